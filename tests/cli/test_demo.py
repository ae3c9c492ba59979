import pytest

from edgeseg.cli import main


@pytest.mark.slow
def test_demo_runs_end_to_end_at_a_tiny_size(tmp_path, capsys):
    code = main(["demo", "-o", str(tmp_path / "demo"), "--count", "24", "--image-size", "80",
                 "--input-size", "64", "--epochs", "1", "--video-parts", "2"])
    assert code == 0
    out = capsys.readouterr().out
    assert "pixel agreement with PyTorch" in out and "pixel agreement with fp32" in out
    for path in ("data/classes.csv", "run/best.pt", "run/iou.png", "model.onnx", "line.mp4",
                 "stream/results.jsonl", "stream/timing.json"):
        assert (tmp_path / "demo" / path).is_file(), path
    assert len(list((tmp_path / "demo" / "stream" / "video").glob("*-0001.mp4"))) == 1
    bundles = list((tmp_path / "demo").glob("bundle-openvino-*/manifest.json"))
    assert len(bundles) == 1
    from edgeseg.engines.bundle import Bundle

    assert Bundle.read(bundles[0].parent).manifest["parity"]["passed"]
    import json

    lines = (tmp_path / "demo" / "stream" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 40  # 2 parts x 20 frames, none dropped
    assert json.loads((tmp_path / "demo" / "stream" / "timing.json").read_text())["frames"] == 40
    assert "overlay video" in out and "latency report" in out


@pytest.mark.slow
def test_the_demo_can_stream_as_a_station(tmp_path, capsys):
    code = main(["demo", "-o", str(tmp_path / "demo"), "--count", "24", "--image-size", "80", "--input-size", "64",
                 "--epochs", "1", "--video-parts", "2", "--station"])
    assert code == 0
    assert "station " in capsys.readouterr().out
    from edgeseg.station.config import read_station

    station = read_station(tmp_path / "demo" / "station.yaml")  # a station file edgeseg serve takes as it is
    assert [camera.name for camera in station.cameras] == ["line"]
    import json

    lines = (tmp_path / "demo" / "stream" / "line" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 40 and {json.loads(line)["station"] for line in lines} == {"demo"}
