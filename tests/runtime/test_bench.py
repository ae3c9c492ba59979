"""``edgeseg bench``: the runtime timed in latency and throughput mode, written as JSON and a plot."""

from __future__ import annotations

import json

import cv2
import numpy as np

from edgeseg.cli import main


def test_bench_times_both_modes_and_writes_json_and_a_plot(bundle_factory, tmp_path, capsys):
    bundle = bundle_factory("openvino", "fp32").path
    code = main(["bench", str(bundle), "--size", "160x128", "--iterations", "24", "--warmup", "4",
                 "--requests", "2", "-o", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "latency:" in out and "throughput:" in out and "peak RSS" in out
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["frame"] == [128, 160] and result["model_input"] == [64, 64] and result["frames_from"] == "synthetic"
    assert result["latency"]["requests"] == 1 and result["throughput"]["requests"] == 2
    for mode in ("latency", "throughput"):
        r = result[mode]
        assert r["frames"] >= 24 and r["fps"] > 0 and len(r["end_to_end_ms"]) == r["frames"]
        e2e = r["timing_ms"]["end_to_end"]
        assert e2e["p50_ms"] <= e2e["p90_ms"] <= e2e["p99_ms"] <= e2e["max_ms"]
        assert r["timing_ms"]["infer"]["p50_ms"] <= e2e["p50_ms"]
    assert result["peak_rss_mb"] > 50
    assert (tmp_path / "bench.png").stat().st_size > 10_000


def test_bench_takes_frames_from_a_source_and_a_duration(bundle_factory, tmp_path, capsys):
    bundle = bundle_factory("openvino", "fp32").path
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i}.png"), np.full((50, 70, 3), 60 * i, np.uint8))
    code = main(["bench", str(bundle), "--frames", str(frames), "--size", "96x80", "--duration", "0.5",
                 "--mode", "latency", "-o", str(tmp_path / "out")])
    assert code == 0
    result = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert "throughput" not in result and result["frames_from"] == str(frames)
    assert result["latency"]["seconds"] >= 0.5 and result["latency"]["frames"] > 5


def test_bench_refuses_a_bad_frame_size(bundle_factory, capsys):
    import pytest

    with pytest.raises(SystemExit) as exit_info:
        main(["bench", str(bundle_factory("openvino", "fp32").path), "--size", "big"])
    assert exit_info.value.code == 2 and "WIDTHxHEIGHT" in capsys.readouterr().err
