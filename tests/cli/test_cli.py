"""A user's mistake gets one clear line naming the file and a non-zero exit, never a traceback."""

import subprocess
import sys

import pytest


def edgeseg(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "edgeseg", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def assert_clean_failure(result, *needles):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    # progress bars may have drawn on stderr before the error; the error itself is one line
    lines = [line for line in result.stderr.splitlines() if line.startswith("edgeseg")]
    assert len(lines) == 1 and lines[0].startswith("edgeseg: error:"), result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_missing_data_set(tmp_path):
    assert_clean_failure(edgeseg("data", "check", tmp_path / "nope"), "nope", "not found")


def test_empty_data_set(tmp_path):
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    (tmp_path / "classes.csv").write_text("id,name,r,g,b\n0,bg,0,0,0\n1,crack,255,0,0\n")
    assert_clean_failure(edgeseg("data", "check", tmp_path), "no images")
    assert_clean_failure(edgeseg("train", tmp_path, "--epochs", "1"), "no images")


def test_training_on_a_corrupt_image_names_it(synth_data, tmp_path):
    import shutil

    data = shutil.copytree(synth_data, tmp_path / "data")
    victim = sorted((data / "images").iterdir())[0]
    victim.write_bytes(b"garbage")
    assert_clean_failure(edgeseg("train", data, "-o", tmp_path / "run", "--epochs", "1", "--input-size", "64"),
                         victim.name)


def test_training_on_a_wrong_size_mask_names_it(synth_data, tmp_path):
    import shutil

    import cv2
    import numpy as np

    data = shutil.copytree(synth_data, tmp_path / "data")
    victim = sorted((data / "masks").iterdir())[0]
    cv2.imwrite(str(victim), np.zeros((5, 5), np.uint8))
    assert_clean_failure(edgeseg("train", data, "-o", tmp_path / "run", "--epochs", "1", "--input-size", "64"),
                         victim.name, "data check")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all"])
def test_export_of_a_bad_checkpoint(tmp_path, content):
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(content)
    assert_clean_failure(edgeseg("export", ckpt, "-o", tmp_path / "m.onnx"), "best.pt")
    assert not (tmp_path / "m.onnx").exists()


def test_export_of_a_missing_checkpoint(tmp_path):
    assert_clean_failure(edgeseg("export", tmp_path / "x.pt", "-o", tmp_path / "m.onnx"), "x.pt", "not found")


def test_synth_with_nonsense_count(tmp_path):
    assert_clean_failure(edgeseg("data", "synth", "-o", tmp_path / "d", "--count", "0"), "at least 2")


def test_bad_class_table(tmp_path):
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    (tmp_path / "classes.csv").write_text("id,name\n0,bg\n")
    assert_clean_failure(edgeseg("data", "check", tmp_path), "classes.csv", "id,name,r,g,b")


def test_cli_export_prints_parity(trained_run, tmp_path):
    result = edgeseg("export", trained_run.best_checkpoint, "-o", tmp_path / "m.onnx", "--parity-images", "4")
    assert result.returncode == 0, result.stderr
    assert "pixel agreement with PyTorch" in result.stdout and (tmp_path / "m.onnx").is_file()


def test_unwritable_output_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = edgeseg("data", "synth", "-o", blocker / "sub", "--count", "2")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert str(blocker) in result.stderr


def _parse(*argv):
    from edgeseg.cli import build_parser

    args = build_parser().parse_args([str(a) for a in argv])
    if getattr(args, "after_parse", None) is not None:
        args.after_parse(args)
    return args


def test_run_takes_the_source_as_its_second_argument_or_as_a_flag_and_show_opens_the_window():
    assert _parse("run", "bundle", "line.mp4").source == "line.mp4"
    assert _parse("run", "bundle", "--source", "line.mp4").source == "line.mp4"
    assert _parse("run", "bundle", "line.mp4", "--show").window is True


@pytest.mark.parametrize(("argv", "says"), [
    (("run", "bundle"), "give a source"),
    (("run", "bundle", "a.mp4", "--source", "b.mp4"), "two sources given"),
    (("run", "bundle", "a.mp4", "--max-frames", "-1"), "--max-frames: must be at least 1, not -1"),
    (("run", "bundle", "a.mp4", "--alpha", "5"), "--alpha: must be from 0 to 1, not 5"),
    (("run", "bundle", "a.mp4", "--threads", "-2"), "--threads: must be at least 1, not -2"),
    (("compile", "m.onnx", "-o", "b", "--calib-frames", "many"), "--calib-frames: must be a whole number, not 'many'"),
])
def test_impossible_values_are_usage_errors_before_any_file_is_read(argv, says, capsys):
    with pytest.raises(SystemExit) as stopped:
        _parse(*argv)
    assert stopped.value.code == 2
    assert says in capsys.readouterr().err


def test_help_texts_print_percent_signs_once_and_the_gate_from_its_constants():
    from edgeseg.cli import build_parser
    from edgeseg.engines.accuracy import MIN_AGREEMENT

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name in ("compile", "export"):
        text = commands[name].format_help()
        assert "%%" not in text
        assert f"{100 * MIN_AGREEMENT['fp32']:g} %" in " ".join(text.split())


def test_every_flag_of_demo_and_models_says_what_it_does():
    from edgeseg.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    for name in ("demo", "models"):
        silent = [a.dest for a in commands[name]._actions if a.help is None]
        assert silent == [], f"{name}: {silent}"


def test_verify_refuses_a_split_the_data_set_does_not_have(bundle_factory, synth_data):
    result = edgeseg("verify", bundle_factory("onnxruntime", "fp32").path, "--data", synth_data, "--split", "test")
    assert_clean_failure(result, "no 'test' split", "train, val")


def test_engine_flags_are_declared_once_with_the_backends_defaults(capsys):
    from edgeseg.cli.engine_flags import engine_options
    from edgeseg.engines import backend_module

    commands = ("compile", "run", "bench")
    helps = {name: _parse_help(name) for name in commands}
    assert f"(default: {backend_module('openvino').DEFAULT_OPTIONS['hint']})" in " ".join(helps["compile"].split())
    assert all("--threads" in text and "engine options" in text for text in helps.values())
    args = _parse("run", "bundle", "a.mp4", "--threads", "2", "--streams", "2")
    assert engine_options(args, "onnxruntime", ("threads", "hint", "streams", "cuda_graph")) == {"threads": 2}
    assert "onnxruntime does not take --streams" in capsys.readouterr().err


def _parse_help(command: str) -> str:
    from edgeseg.cli import build_parser

    return build_parser()._subparsers._group_actions[0].choices[command].format_help()


def test_train_starts_from_the_measured_recipe_and_epochs_alone_lift_its_clock(monkeypatch, tmp_path):
    import edgeseg.training.trainer as trainer
    from edgeseg.cli import main

    seen = []
    monkeypatch.setattr(trainer, "train", lambda cfg, resume=False: seen.append(cfg) or _Stop())
    for argv in (["train", "DATA"], ["train", "DATA", "--epochs", "5"], ["train", "DATA", "--arch", "unet"],
                 ["train", "DATA", "--epochs", "5", "--max-minutes", "10"]):
        main(argv)
    recipe, epochs, other_arch, both = seen
    assert (recipe.arch, recipe.arch_kwargs, recipe.ema_decay, recipe.max_minutes) == (
        "mobile-lraspp", {"fine_detail": True, "kernel": 3, "last_stage_width": 0.67, "squeeze_excite": False},
        0.995, 29.5)
    assert (recipe.batch_size, recipe.calibration_strength, recipe.oversample) == (16, 0.5, 3.0)
    assert (recipe.loss_downscale, recipe.reduced_size_share, recipe.reduced_size_scale) == (2, 0.6, 0.625)
    assert (epochs.epochs, epochs.max_minutes) == (5, None)  # that many epochs, not the recipe's clock
    assert (other_arch.arch, other_arch.arch_kwargs) == ("unet", {})  # the recipe's options are its arch's
    assert (both.epochs, both.max_minutes) == (5, 10)


class _Stop:
    """What a monkeypatched train returns: no history, as a rank other than 0 does."""
    history: list = []


@pytest.mark.parametrize(("command", "missing", "extra"), [
    (["train", "DATA"], "torch", "build"), (["export", "best.pt", "-o", "m.onnx"], "torch", "build"),
    (["models"], "torch", "build"), (["compile", "m.onnx", "-o", "b"], "onnx", "build")])
def test_a_build_side_command_in_a_run_side_install_names_the_extra(command, missing, extra):
    # a process whose `import MISSING` fails, as in a device's run-side install
    code = (f"import sys; sys.modules[{missing!r}] = None; from edgeseg.cli import main; "
            f"sys.exit(main({command!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and f"needs {missing}" in result.stderr
    assert f"pip install 'edgeseg[{extra}]'" in result.stderr
