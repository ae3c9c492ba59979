from edgeseg.cli import main


def test_demo_runs_end_to_end_at_a_tiny_size(tmp_path, capsys):
    code = main(["demo", "-o", str(tmp_path / "demo"), "--count", "24", "--image-size", "80",
                 "--input-size", "64", "--epochs", "1"])
    assert code == 0
    out = capsys.readouterr().out
    assert "pixel agreement with PyTorch" in out
    for path in ("data/classes.csv", "run/best.pt", "run/iou.png", "model.onnx"):
        assert (tmp_path / "demo" / path).is_file(), path
