"""``edgeseg compile model.onnx --backend B --precision P [--calib DIR] -o BUNDLE``, and
``edgeseg compile --from BUNDLE -o NEW`` (the bundle rebuilt for this machine's runtime)."""

from __future__ import annotations

import argparse
import sys

from edgeseg.cli.engine_flags import add_engine_flags, engine_options
from edgeseg.cli.values import positive_int
from edgeseg.engines import BACKENDS, PRECISIONS
from edgeseg.engines.accuracy import gate_rules

ENGINE_FLAGS = ("device", "hint", "threads", "streams", "workspace_mb", "cuda_graph")


def add_parser(sub) -> None:
    p = sub.add_parser("compile", help="compile an exported ONNX graph into a checked bundle",
                       description="Makes the precision graph (fp16; int8 Q/DQ calibrated on --calib frames; bf16 "
                                   "is an OpenVINO hint), builds the backend's engine, and proves it against the "
                                   f"fp32 graph on real frames. Gate: {gate_rules()}. Below it nothing is written "
                                   "unless --force. A --profile FILE (export/profiles/) gives a target's recipe; "
                                   "flags given here win over it. --from BUNDLE rebuilds an OpenVINO bundle for "
                                   "this machine's OpenVINO from the bundle itself, with the run side only.")
    p.add_argument("onnx", nargs="?", help="graph from edgeseg export")
    p.add_argument("--from", dest="from_bundle", metavar="BUNDLE",
                   help="rebuild this OpenVINO bundle for the OpenVINO installed here, instead of compiling a graph: "
                        "same precision, options and parity record; needs neither onnx nor calibration data")
    p.add_argument("-o", "--output", required=True, help="bundle folder to write")
    p.add_argument("--sign", metavar="KEY", help="sign the manifest with this Ed25519 private key (PEM), for "
                                                 "run/serve --trust")
    p.add_argument("--profile", help="a target's recipe (YAML: backend, precision, calib_frames, options), "
                                     "e.g. export/profiles/intel-ipc-int8.yaml")
    p.add_argument("--backend", choices=tuple(BACKENDS), help="default openvino")
    p.add_argument("--precision", choices=PRECISIONS, help="default fp32")
    p.add_argument("--calib", help="int8 calibration frames: a data set folder (its train split) or a folder of images")
    p.add_argument("--calib-frames", type=positive_int, help="frames used for calibration (default 300)")
    p.add_argument("--data", help="labelled data set for the parity gate (default: the calibration folder)")
    p.add_argument("--split", default="val", help="split of --data used for the gate (default val)")
    p.add_argument("--val-frames", type=positive_int,
                   help="frames used for the gate, spread over the split (default: the whole split)")
    p.add_argument("--accuracy-control", action="store_true", default=None,
                   help="int8: measure mIoU on the labelled --calib set and keep in float the layers whose "
                        "quantization costs the most, until within 0.7 points (minutes, not seconds)")
    p.add_argument("--force", action="store_true", help="write the bundle even below the gate (recorded in it)")
    add_engine_flags(p, ENGINE_FLAGS, for_bundle=False)
    p.set_defaults(run=run, after_parse=lambda args: _graph_or_bundle(p, args))


_BUILD_ONLY = ("profile", "backend", "precision", "calib", "calib_frames", "data", "val_frames",
               "accuracy_control", "force", *ENGINE_FLAGS)


def _graph_or_bundle(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if (args.onnx is None) == (args.from_bundle is None):
        parser.error("give an ONNX graph to compile, or --from BUNDLE to rebuild, not both")
    given = [name for name in _BUILD_ONLY if args.from_bundle and getattr(args, name, None) not in (None, False)]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        parser.error(f"--from keeps the bundle's precision and options; {flags} only apply to compiling a graph")


_DEFAULTS = {"backend": "openvino", "precision": "fp32", "calib_frames": 300, "val_frames": None,
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
    return {**(from_profile or {}), **engine_options(args, args.backend, ENGINE_FLAGS)}


def print_accuracy(report, heading: str) -> None:
    print(f"{heading} on {report.images} frames of {report.source}:")
    print(f"  pixel agreement with fp32   {100 * report.pixel_agreement:.3f} %")
    for engine, reference, where in ((report.engine_frame_size, report.reference_frame_size, "at frame size"),
                                     (report.engine, report.reference, "at model size")):
        if engine is None or reference is None:
            continue
        print(f"  mIoU {where:<23}engine {engine['miou']:.4f}   fp32 {reference['miou']:.4f}")
        print(f"  defect mIoU {where:<16}engine {engine['defect_miou']:.4f}   fp32 {reference['defect_miou']:.4f}")


def rebuild(args: argparse.Namespace) -> int:
    from edgeseg.export.rebuild import rebuild_bundle

    manifest = rebuild_bundle(args.from_bundle, args.output, args.sign)
    origin = manifest["rebuilt_from"]["fingerprint"]
    print(f"rebuilt {args.from_bundle} ({', '.join(f'{k} {v}' for k, v in origin.items())}) for "
          f"{', '.join(f'{k} {v}' for k, v in manifest['fingerprint'].items())}: {manifest['precision']}, "
          "parity record of the original build kept")
    print(f"wrote {args.output}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.from_bundle:
        return rebuild(args)
    from edgeseg.export.compile import CompileOptions, compile_bundle

    profile_options = apply_profile(args)
    result = compile_bundle(CompileOptions(
        onnx=args.onnx, output=args.output, backend=args.backend, precision=args.precision, calib=args.calib,
        calib_frames=args.calib_frames, data=args.data, split=args.split, val_frames=args.val_frames,
        force=args.force, accuracy_control=args.accuracy_control, options=backend_options(args, profile_options),
        sign_key=args.sign),
        warn=lambda text: print(f"edgeseg: warning: {text}", file=sys.stderr))
    print_accuracy(result.accuracy, "parity gate")
    print(f"  {'passed' if result.passed else 'FAILED (kept because of --force)'}: {result.rule}")
    print(f"wrote {result.path}")
    return 0
