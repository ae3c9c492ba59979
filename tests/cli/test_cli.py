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
