"""``edgeseg compile model.onnx --backend B --precision P [--calib DIR] -o BUNDLE``."""

from __future__ import annotations

import argparse
import sys

from edgeseg.cli.values import positive_int
from edgeseg.engines import BACKENDS, PRECISIONS
from edgeseg.engines.accuracy import gate_rules

# Which flags each backend takes (a backend refuses options it does not know).
_BACKEND_FLAGS = {"openvino": ("device", "hint", "threads", "streams"), "onnxruntime": ("threads",),
                  "tensorrt": ("workspace_mb", "cuda_graph")}


def add_parser(sub) -> None:
    p = sub.add_parser("compile", help="compile an exported ONNX graph into a checked bundle",
                       description="Makes the precision graph (fp16; int8 Q/DQ calibrated on --calib frames; bf16 "
                                   "is an OpenVINO hint), builds the backend's engine, and proves it against the "
                                   f"fp32 graph on real frames. Gate: {gate_rules()}. Below it nothing is written "
                                   "unless --force. A --profile FILE (export/profiles/) gives a target's recipe; "
                                   "flags given here win over it.")
    p.add_argument("onnx", help="graph from edgeseg export")
    p.add_argument("-o", "--output", required=True, help="bundle folder to write")
    p.add_argument("--profile", help="a target's recipe (YAML: backend, precision, calib_frames, options), "
                                     "e.g. export/profiles/intel-ipc-int8.yaml")
    p.add_argument("--backend", choices=tuple(BACKENDS), help="default openvino")
    p.add_argument("--precision", choices=PRECISIONS, help="default fp32")
    p.add_argument("--calib", help="int8 calibration frames: a data set folder (its train split) or a folder of images")
    p.add_argument("--calib-frames", type=positive_int, help="frames used for calibration (default 300)")
    p.add_argument("--data", help="labelled data set for the parity gate (default: the calibration folder)")
    p.add_argument("--split", default="val", help="split of --data used for the gate (default val)")
    p.add_argument("--val-frames", type=positive_int, help="frames used for the gate (default 200)")
    p.add_argument("--accuracy-control", action="store_true", default=None,
                   help="int8: measure mIoU on the labelled --calib set and keep in float the layers whose "
                        "quantization costs the most, until within 0.7 points (minutes, not seconds)")
    p.add_argument("--force", action="store_true", help="write the bundle even below the gate (recorded in it)")
    p.add_argument("--device", help="OpenVINO device (default CPU)")
    p.add_argument("--hint", choices=("latency", "throughput"), help="OpenVINO performance hint (default latency)")
    p.add_argument("--threads", type=positive_int, help="inference threads (default: the backend's choice)")
    p.add_argument("--streams", type=positive_int, help="OpenVINO streams (default: from the hint)")
    p.add_argument("--workspace-mb", type=positive_int, help="TensorRT builder workspace (default 1024)")
    p.add_argument("--no-cuda-graph", dest="cuda_graph", action="store_const", const=False,
                   help="TensorRT: launch each frame without a captured CUDA graph")
    p.set_defaults(run=run)


_DEFAULTS = {"backend": "openvino", "precision": "fp32", "calib_frames": 300, "val_frames": 200,
             "accuracy_control": False}


def apply_profile(args: argparse.Namespace) -> dict:
    """Fill what the command line left unset from --profile, then from the defaults; returns the
    profile's engine options (flags given on the command line win over them)."""
    from edgeseg.export.profile import CompileProfile, read_profile

    profile = read_profile(args.profile) if args.profile else CompileProfile()
    for name, default in _DEFAULTS.items():
        if getattr(args, name) is None:
            from_profile = getattr(profile, name)
            setattr(args, name, default if from_profile is None else from_profile)
    return dict(profile.options)


def backend_options(args: argparse.Namespace, from_profile: dict | None = None) -> dict:
    flags = {k: getattr(args, k) for k in _BACKEND_FLAGS[args.backend] if getattr(args, k, None) is not None}
    return {**(from_profile or {}), **flags}


def print_accuracy(report, heading: str) -> None:
    print(f"{heading} on {report.images} frames of {report.source}:")
    print(f"  pixel agreement with fp32   {100 * report.pixel_agreement:.3f} %")
    if report.engine is not None:
        print(f"  mIoU vs ground truth        engine {report.engine['miou']:.4f}   fp32 {report.reference['miou']:.4f}")
        print(f"  defect mIoU                 engine {report.engine['defect_miou']:.4f}   "
              f"fp32 {report.reference['defect_miou']:.4f}")


def run(args: argparse.Namespace) -> int:
    from edgeseg.export.compile import CompileOptions, compile_bundle

    profile_options = apply_profile(args)
    result = compile_bundle(CompileOptions(
        onnx=args.onnx, output=args.output, backend=args.backend, precision=args.precision, calib=args.calib,
        calib_frames=args.calib_frames, data=args.data, split=args.split, val_frames=args.val_frames,
        force=args.force, accuracy_control=args.accuracy_control, options=backend_options(args, profile_options)),
        warn=lambda text: print(f"edgeseg: warning: {text}", file=sys.stderr))
    print_accuracy(result.accuracy, "parity gate")
    print(f"  {'passed' if result.passed else 'FAILED (kept because of --force)'}: {result.rule}")
    print(f"wrote {result.path}")
    return 0
