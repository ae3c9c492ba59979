"""Compile profiles: the recipe files in export/profiles/ are valid for their backend, and flags
given on the command line win over a profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeseg.cli import build_parser
from edgeseg.cli.compile_cmd import apply_profile, backend_options
from edgeseg.engines import PRECISIONS, backend_module
from edgeseg.errors import ConfigError
from edgeseg.export.profile import read_profile

PROFILES = sorted((Path(__file__).resolve().parents[2] / "export" / "profiles").glob("*.yaml"))


def test_there_are_profiles_for_an_intel_ipc_at_int8_and_a_jetson_at_fp16():
    names = {path.stem for path in PROFILES}
    assert {"intel-ipc-int8", "jetson-fp16"} <= names


@pytest.mark.parametrize("path", PROFILES, ids=lambda path: path.stem)
def test_every_shipped_profile_names_a_backend_precision_and_options_it_takes(path):
    profile = read_profile(path)
    module = backend_module(profile.backend)
    assert profile.precision in PRECISIONS and profile.precision in module.PRECISIONS
    assert set(profile.options) <= set(module.DEFAULT_OPTIONS)
    assert profile.description


def _args(*argv: str):
    return build_parser().parse_args(["compile", "model.onnx", "-o", "bundle", *argv])


def test_a_profile_fills_what_the_flags_leave_unset_and_flags_win(tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text("backend: openvino\nprecision: int8\ncalib_frames: 100\n"
                       "options: {hint: throughput, streams: 2}\n")
    args = _args("--profile", str(profile), "--precision", "fp16", "--streams", "1")
    options = backend_options(args, apply_profile(args))
    assert (args.backend, args.precision, args.calib_frames, args.val_frames) == ("openvino", "fp16", 100, None)
    assert options == {"hint": "throughput", "streams": 1}


def test_without_a_profile_the_defaults_hold():
    args = _args()
    apply_profile(args)
    assert (args.backend, args.precision, args.calib_frames, args.accuracy_control) == ("openvino", "fp32", 300, False)


def test_a_profile_with_a_wrong_key_is_one_clear_error(tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text("backend: openvino\nprecison: int8\n")
    with pytest.raises(ConfigError, match=r"p.yaml: unknown settings precison"):
        apply_profile(_args("--profile", str(profile)))
