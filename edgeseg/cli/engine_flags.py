"""The engine options as flags, declared once for compile, run and bench; their defaults shown
in the help come from the backends' own ``DEFAULT_OPTIONS``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from edgeseg.cli.values import positive_int
from edgeseg.engines import BACKENDS, backend_module

_WHAT: dict[str, tuple[str, dict[str, Any]]] = {
    "device": ("OpenVINO device", {}),
    "hint": ("OpenVINO performance hint", {"choices": ("latency", "throughput")}),
    "threads": ("inference threads", {"type": positive_int}),
    "streams": ("OpenVINO streams", {"type": positive_int}),
    "workspace_mb": ("TensorRT builder workspace in MB", {"type": positive_int}),
}


def _default(option: str) -> str:
    for name in BACKENDS:
        defaults = backend_module(name).DEFAULT_OPTIONS
        if option in defaults:
            value = defaults[option]
            return "the backend's choice" if value is None else str(value)
    return "the backend's choice"


def add_engine_flags(parser: argparse.ArgumentParser, options: tuple[str, ...], for_bundle: bool) -> None:
    """Flags for ``options`` (of the backends' DEFAULT_OPTIONS, plus cuda_graph) in one group:
    for a build (defaults: the backends') or for running a bundle (defaults: what it was built with)."""
    at = "the bundle's settings" if for_bundle else "the profile and the backend's defaults (the bundle records them)"
    group = parser.add_argument_group("engine options", f"override {at}; a backend ignores the ones it does not take")
    for option in options:
        if option == "cuda_graph":
            group.add_argument("--no-cuda-graph", dest="cuda_graph", action="store_const", const=False,
                               help="TensorRT: launch each frame without a captured CUDA graph")
            continue
        what, kwargs = _WHAT[option]
        default = "the bundle's" if for_bundle else _default(option)
        group.add_argument(f"--{option.replace('_', '-')}", **kwargs, help=f"{what} (default: {default})")


def engine_options(args: argparse.Namespace, backend: str, options: tuple[str, ...]) -> dict:
    """The flags given for ``backend``; a flag it does not take is noted on stderr, not passed."""
    takes = backend_module(backend).DEFAULT_OPTIONS
    given = {option: getattr(args, option) for option in options if getattr(args, option, None) is not None}
    ignored = sorted(set(given) - set(takes))
    if ignored:
        flags = ", ".join("--" + option.replace("_", "-") for option in ignored)
        print(f"edgeseg: note: {backend} does not take {flags}; ignored", file=sys.stderr)
    return {option: value for option, value in given.items() if option in takes}


def add_load_policy_flags(parser: argparse.ArgumentParser, versions: bool = True) -> None:
    """--trust and (where an engine is opened) --allow-version-mismatch: what this process asks of
    every bundle it opens."""
    group = parser.add_argument_group("bundle trust", "what every bundle must satisfy to be loaded")
    group.add_argument("--trust", action="append", metavar="PUBKEY",
                       help="load only bundles signed by this Ed25519 public key (PEM; repeat for several keys; "
                            "default: the paths in $EDGESEG_TRUST, separated by ':')")
    if not versions:
        return
    group.add_argument("--allow-version-mismatch", action="store_true",
                       help="load a bundle built for another backend release, CUDA or GPU anyway, with a warning "
                            "(a newer OpenVINO or ONNX Runtime of the same major version loads without it)")


def apply_load_policy(args: argparse.Namespace) -> None:
    from pathlib import Path

    from edgeseg.engines.trust import LoadPolicy, set_load_policy

    keys = args.trust or [p for p in os.environ.get("EDGESEG_TRUST", "").split(":") if p]
    set_load_policy(LoadPolicy(tuple(Path(k) for k in keys), bool(getattr(args, "allow_version_mismatch", False))))
