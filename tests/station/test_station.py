"""The station: its file checked by a schema, `serve --check`, and `serve` running several
cameras at once, each supervised on its own."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from media import edgeseg_process, free_port, numbered_frames, serve_stream, stop, wait_for, write_video

from edgeseg.errors import ConfigError
from edgeseg.station.config import read_station

ROOT = Path(__file__).resolve().parents[2]


def _edgeseg(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "edgeseg", *map(str, args)], capture_output=True, text=True,
                          timeout=180, **kwargs)


def test_the_example_station_file_is_valid_and_its_paths_are_anchored_to_it():
    station = read_station(ROOT / "deploy" / "station.example.yaml")
    assert [camera.name for camera in station.cameras] == ["top", "side"]
    assert station.cameras[0].rules == ROOT / "deploy" / "rules.yaml"  # relative to the file
    assert station.cameras[1].mode == "tile" and station.cameras[0].overlays == "failed"
    assert station.plugins_of("top")[0].plugin == str(ROOT / "deploy" / "sinks" / "verdict_csv.py")
    assert station.plugins_of("side") == ()


@pytest.mark.parametrize(("text", "says"), [
    ("station: a\nresults: r\ncameras:\n  - {name: top, source: usb:0, bundle: b, fps: 3}\n",
     "unknown settings cameras.0.fps"),
    ("station: a\nresults: r\ncameras:\n  - {name: top, source: usb:0, bundle: b}\n"
     "  - {name: top, source: usb:1, bundle: b}\n", "cameras: camera names must differ: top more than once"),
    ("station: a\nresults: r\ncameras:\n  - {name: top, source: usb:0, bundle: b, max_fps: 0}\n",
     "cameras.0.max_fps: input should be greater than 0, found 0"),
    ("station: a\nresults: r\ncameras:\n  - {name: top, bundle: b}\n", "cameras.0.source: missing"),
    ("station: a\nresults: r\ncameras: []\n", "cameras: list should have at least 1 item"),
    ("station: a b\nresults: r\ncameras:\n  - {name: top, source: usb:0, bundle: b}\n", "station: string should match"),
])
def test_a_wrong_station_file_is_one_line_naming_the_file_and_the_key(tmp_path, text, says):
    path = tmp_path / "station.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        read_station(path)
    assert str(refused.value).startswith(f"{path}: {says}") and "\n" not in str(refused.value)


def _station(tmp_path: Path, cameras: list[dict], metrics: str | None = None) -> Path:
    import yaml

    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump({"station": "line-3", "results": "results", "cameras": cameras,
                                    "metrics": metrics}))
    return path


def _get(url: str) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


def test_serve_check_reports_every_camera_and_fails_on_any(bundle_factory, tmp_path):
    bundle = bundle_factory("onnxruntime", "fp32").path
    video = write_video(tmp_path / "line.mp4", numbered_frames(8, 96, 128))
    good = [{"name": "top", "source": str(video), "bundle": str(bundle)}]
    result = _edgeseg("serve", "--check", _station(tmp_path, good))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   camera top: bundle" in result.stdout and "gives 128x96 colour frames" in result.stdout
    bad = good + [{"name": "side", "source": "rtsp://user:pw@127.0.0.1:9/x", "bundle": str(tmp_path / "nope")}]
    result = _edgeseg("serve", "--check", _station(tmp_path, bad))
    assert result.returncode == 1
    assert "FAIL camera side: bundle:" in result.stdout and "FAIL camera side: source rtsp://***@127.0.0.1:9/x" \
        in result.stdout and "pw" not in result.stdout


def test_serve_runs_each_camera_on_its_own_and_stops_on_sigterm(bundle_factory, tmp_path):
    bundle = bundle_factory("onnxruntime", "fp32").path
    frames = numbered_frames(30, 96, 128)
    video = write_video(tmp_path / "line.mp4", frames)
    url = f"udp://127.0.0.1:{free_port()}?pkt_size=1316"
    server = serve_stream(url, seconds=60)
    cameras = [{"name": "file", "source": str(video), "bundle": str(bundle)},
               {"name": "stream", "source": url.split("?")[0], "bundle": str(bundle), "max_fps": 10},
               {"name": "broken", "source": str(video), "bundle": str(tmp_path / "no-bundle")}]
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # as systemd listens for a Type=notify unit
    systemd.bind(str(tmp_path / "notify.sock"))
    metrics = f"127.0.0.1:{free_port()}"
    serve = edgeseg_process("serve", _station(tmp_path, cameras, metrics), "--log-format", "json",
                            env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "1000000"})
    results = tmp_path / "results"
    try:
        stream_lines = results / "stream" / "results.jsonl"
        assert wait_for(lambda: stream_lines.exists() and stream_lines.read_text().count("\n") >= 10, timeout=60)
        scraped = _get(f"http://{metrics}/metrics")
        health, ready = _get(f"http://{metrics}/healthz"), _get(f"http://{metrics}/readyz")
        started = time.monotonic()
        serve.send_signal(signal.SIGTERM)
        stdout, stderr = serve.communicate(timeout=30)
    finally:
        serve.kill()
        stop(server)
    assert serve.returncode == 0, stderr
    assert time.monotonic() - started < 20
    file_lines = [json.loads(line) for line in (results / "file" / "results.jsonl").read_text().splitlines()]
    assert [line["index"] for line in file_lines] == list(range(len(frames)))  # the file camera is complete
    assert {(line["station"], line["camera"]) for line in file_lines} == {("line-3", "file")}
    stream = [json.loads(line) for line in stream_lines.read_text().splitlines()]
    assert {line["camera"] for line in stream} == {"stream"}
    gaps = [b["timestamp"] - a["timestamp"] for a, b in zip(stream, stream[1:], strict=False)]
    # capped near 10 frames a second, not the stream's 25: the newest frame at each take sits on the
    # stream's 40 ms grid, so gaps are 80 or 120 ms, minus jitter
    assert sorted(gaps)[len(gaps) // 2] >= 0.07
    logged = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert logged and all({"time", "level", "logger", "message"} <= set(entry) for entry in logged)
    assert any(e["message"].startswith("camera broken:") for e in logged)  # supervised, the others unaffected
    assert any("restarting in" in e["message"] for e in logged)
    assert "camera broken: 0 frames" in stdout
    systemd.setblocking(False)
    told = []
    while True:
        try:
            told.append(systemd.recv(4096).decode())
        except BlockingIOError:
            break
    systemd.close()
    assert told[0].startswith("READY=1") and "WATCHDOG=1" in told and told[-1] == "STOPPING=1"
    from prometheus_client.parser import text_string_to_metric_families

    assert scraped[0] == 200
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(scraped[1].decode()) for s in family.samples}
    assert samples[("edgeseg_frames_total", (("camera", "stream"),))] >= 10
    assert samples[("edgeseg_camera_up", (("camera", "stream"),))] == 1.0
    assert samples[("edgeseg_camera_up", (("camera", "broken"),))] == 0.0
    assert samples[("edgeseg_stage_seconds_count", (("camera", "stream"), ("stage", "infer")))] >= 10
    assert ("edgeseg_engine_info", (("backend", "onnxruntime"), ("bundle", "onnxruntime-fp32-64"), ("camera", "stream"),
                                    ("precision", "fp32"))) in samples
    assert health[0] == 503 and json.loads(health[1])["cameras"]["broken"]["camera_up"] is False  # a camera is down
    assert ready[0] == 503 and json.loads(ready[1])["cameras"] == {"file": True, "stream": True, "broken": False}


def test_sighup_swaps_a_changed_bundle_and_keeps_the_old_one_when_the_new_one_is_broken(bundle_factory, tmp_path):
    import shutil

    first, second = bundle_factory("onnxruntime", "fp32").path, bundle_factory("openvino", "fp32").path
    broken = shutil.copytree(first, tmp_path / "broken")
    model = broken / "model.onnx"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])  # truncated after it was built
    url = f"udp://127.0.0.1:{free_port()}?pkt_size=1316"
    server = serve_stream(url, seconds=90)
    station = _station(tmp_path, [{"name": "top", "source": url.split("?")[0], "bundle": str(first), "max_fps": 10}])
    serve = edgeseg_process("serve", station)
    results = tmp_path / "results" / "top" / "results.jsonl"

    def bundles_seen() -> list[str]:
        lines = results.read_text().splitlines() if results.exists() else []
        return [json.loads(line)["bundle"]["name"] for line in lines]

    try:
        assert wait_for(lambda: len(bundles_seen()) >= 5, timeout=60)
        _station(tmp_path, [{"name": "top", "source": url.split("?")[0], "bundle": str(second), "max_fps": 10}])
        serve.send_signal(signal.SIGHUP)
        assert wait_for(lambda: bundles_seen()[-1] == second.name, timeout=60)
        _station(tmp_path, [{"name": "top", "source": url.split("?")[0], "bundle": str(broken), "max_fps": 10}])
        serve.send_signal(signal.SIGHUP)
        swapped_at = len(bundles_seen())
        assert wait_for(lambda: len(bundles_seen()) >= swapped_at + 15, timeout=60)  # it went on running
        serve.send_signal(signal.SIGTERM)
        stdout, stderr = serve.communicate(timeout=30)
    finally:
        serve.kill()
        stop(server)
    assert serve.returncode == 0, stderr
    seen = bundles_seen()
    assert seen[0] == first.name and set(seen) == {first.name, second.name}  # the broken one never ran
    assert seen.index(second.name) > 0 and all(name == second.name for name in seen[seen.index(second.name):])
    assert "reload: camera top keeps running as it was" in stderr and "model.onnx" in stderr


def test_the_watchdog_replaces_a_pipeline_that_stopped_inspecting(bundle_factory, tmp_path):
    import threading

    from edgeseg.runtime.sinks import Sink
    from edgeseg.station.service import Station

    video = write_video(tmp_path / "line.mp4", numbered_frames(400, 96, 128))
    station_file = _station(tmp_path, [{"name": "top", "source": str(video),
                                        "bundle": str(bundle_factory("onnxruntime", "fp32").path), "max_fps": 25}])
    config = read_station(station_file).model_copy(update={"watchdog_seconds": 1.0})
    release = threading.Event()

    class Hangs(Sink):  # a sink that stops answering after a few frames, as a stuck backend call would
        def __init__(self):
            self.written = 0

        def write(self, result) -> None:
            self.written += 1
            if self.written > 5:
                release.wait()

    station = Station(config)
    first = station.pipelines[0]
    first.on_session = lambda session: session.sinks.append(Hangs())
    runner = threading.Thread(target=station.run, daemon=True)
    runner.start()
    try:
        assert wait_for(lambda: station.stuck == [first], timeout=30)
        assert not station.healthy() and station.health()[0] is False
        replacement = station.pipelines[0]
        assert replacement is not first and replacement.restarts == 1
        assert wait_for(lambda: replacement.session is not None and replacement.session.loop.frames > 10, timeout=30)
    finally:
        station.stop()
        release.set()
        runner.join(30)
    assert not runner.is_alive()


def test_a_camera_can_take_its_frames_from_a_source_of_ones_own(bundle_factory, tmp_path):
    from edgeseg.runtime.sources.memory import MemorySource
    from edgeseg.station.service import Station

    frames = numbered_frames(7, 96, 128)
    config = read_station(_station(tmp_path, [{"name": "driver", "source": "my-driver://line-1",
                                               "bundle": str(bundle_factory("onnxruntime", "fp32").path)}]))
    station = Station(config, sources={"driver": lambda: MemorySource(frames, 20)})  # a plant's own driver
    station.run()
    lines = (tmp_path / "results" / "driver" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 20 and station.pipelines[0].done


def test_a_stream_that_dies_and_returns_at_another_size_and_a_camera_that_comes_late_leave_the_file_camera_whole(
        bundle_factory, tmp_path):
    import cv2

    bundle = bundle_factory("onnxruntime", "fp32").path
    frames = numbered_frames(60, 96, 128)
    video = write_video(tmp_path / "line.mp4", frames)
    stream_url = f"http://127.0.0.1:{free_port()}/live.ts"  # served to one client: a kill breaks the connection
    late_url = f"udp://127.0.0.1:{free_port()}?pkt_size=1316"
    cameras = [{"name": "file", "source": str(video), "bundle": str(bundle), "max_fps": 6},
               {"name": "stream", "source": stream_url, "bundle": str(bundle), "max_fps": 10, "masks": True},
               {"name": "late", "source": late_url.split("?")[0], "bundle": str(bundle), "max_fps": 10}]
    servers = [serve_stream(stream_url, seconds=60, size="160x128")]
    serve = edgeseg_process("serve", _station(tmp_path, cameras))
    results = tmp_path / "results"

    def lines(camera: str) -> list[dict]:
        path = results / camera / "results.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def mask_sizes() -> set[tuple[int, ...]]:
        return {cv2.imread(str(path), cv2.IMREAD_UNCHANGED).shape for path in (results / "stream/masks").glob("*.png")}

    try:
        assert wait_for(lambda: len(lines("stream")) >= 10, timeout=60)
        stop(servers.pop())  # the stream's server dies mid-run ...
        time.sleep(1.5)
        servers.append(serve_stream(stream_url, seconds=60, size="192x144"))  # ... and returns at another size
        servers.append(serve_stream(late_url, seconds=60))  # a camera absent at start appears
        assert wait_for(lambda: (192 * 144 in {h * w for h, w in mask_sizes()} and len(lines("late")) >= 5),
                        timeout=60), (mask_sizes(), len(lines("late")))
        assert wait_for(lambda: len(lines("file")) == len(frames), timeout=30)
        serve.send_signal(signal.SIGTERM)
        stdout, stderr = serve.communicate(timeout=30)
    finally:
        serve.kill()
        for server in servers:
            stop(server)
    assert serve.returncode == 0, stderr
    assert [line["index"] for line in lines("file")] == list(range(len(frames)))  # whole and in order
    assert mask_sizes() == {(128, 160), (144, 192)}  # each frame inspected at its own size
    stream = lines("stream")
    assert [line["index"] for line in stream] == sorted(line["index"] for line in stream)
    assert "camera stream: " in stdout and "1 reconnect(s), 0 restart(s)" in stdout.split("camera stream: ")[1]
    assert "camera late: " in stdout and ", 0 restart(s)" in stdout.split("camera late: ")[1]
