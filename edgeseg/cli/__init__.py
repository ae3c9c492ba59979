"""The ``edgeseg`` command. Each subcommand lives in its own module and imports the build side
(torch, onnx) only when it runs, so ``edgeseg --help`` and the run side stay light."""

from __future__ import annotations

import argparse
import sys

import edgeseg
from edgeseg.cli import (
    bench_cmd,
    bundle_cmd,
    compile_cmd,
    data_cmd,
    demo_cmd,
    export_cmd,
    import_cmd,
    models_cmd,
    run_cmd,
    serve_cmd,
    serving_cmd,
    train_cmd,
    verify_cmd,
)
from edgeseg.cli.engine_flags import apply_load_policy
from edgeseg.errors import EdgesegError

COMMANDS = (data_cmd, models_cmd, train_cmd, export_cmd, import_cmd, compile_cmd, bundle_cmd, verify_cmd, run_cmd,
            serve_cmd, serving_cmd, bench_cmd, demo_cmd)


# a package a command may import that a run-side install lacks -> the extra that brings it
EXTRA_OF = {"torch": "build", "onnx": "build", "onnxslim": "build", "matplotlib": "build", "nncf": "quantize",
            "openvino": "openvino", "onnxruntime": "onnxruntime", "paho": "station", "prometheus_client": "station",
            "pypylon": "pylon", "cryptography": "signing",
            "tritonclient": "serving", "google": "serving"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgeseg", description="Semantic segmentation for inspection cameras: labelled images to a "
                                    "verified engine on the device.")
    parser.add_argument("--version", action="version", version=f"edgeseg {edgeseg.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as given: a command may start itself again
    if getattr(args, "after_parse", None) is not None:  # checks that span several arguments, as usage errors
        args.after_parse(args)
    try:
        if hasattr(args, "trust"):
            apply_load_policy(args)
        return int(args.run(args) or 0)
    except EdgesegError as e:
        print(f"edgeseg: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a folder we may not write: the user's to fix, no traceback
        where = f"{e.filename}: " if e.filename else ""
        print(f"edgeseg: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:  # a build-side command in a device's run-side install
        extra = EXTRA_OF.get((e.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"edgeseg: error: `edgeseg {args.command}` needs {e.name}, which this install lacks: "
              f"pip install 'edgeseg[{extra}]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgeseg: interrupted", file=sys.stderr)
        return 130
