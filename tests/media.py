"""Test media: video files written with OpenCV and network streams served by ffmpeg on localhost."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np


def write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0, fourcc: str = "mp4v") -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"cannot write {path}"
    for frame in frames:
        writer.write(frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def numbered_frames(count: int, height: int = 64, width: int = 80) -> list[np.ndarray]:
    """BGR frames whose brightness encodes their number (10 levels apart, survives compression)."""
    return [np.full((height, width, 3), (i * 10) % 250, np.uint8) for i in range(count)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    assert path, "ffmpeg is missing: .ci/run installs Debian's ffmpeg package"
    return path


def serve_stream(url: str, seconds: float = 30, size: str = "160x128", rate: int = 25) -> subprocess.Popen:
    """ffmpeg sending a test pattern as MPEG-TS, in real time, to ``url`` (udp:// pushes; http://
    with -listen 1 serves one client)."""
    listen = ["-listen", "1"] if url.startswith("http") else []
    return subprocess.Popen([ffmpeg(), "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
                             f"testsrc=size={size}:rate={rate}", "-t", str(seconds), "-f", "mpegts", *listen, url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(process: subprocess.Popen) -> None:
    process.kill()
    process.wait(5)


def wait_for(condition, timeout: float = 20.0, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


def start_broker(port: int, folder: Path) -> subprocess.Popen:
    """Debian's mosquitto on a loopback port, keeping its sessions in ``folder`` across restarts
    (.ci/run installs it)."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    assert Path(binary).exists(), "mosquitto is missing: .ci/run installs Debian's mosquitto package"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                      f"persistence_location {folder}/\n")
    broker = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert wait_for(lambda: _accepts(port), timeout=10), "mosquitto did not start"
    return broker


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def subscribe(port: int, client_id: str, on_message):
    """The plant's side of MQTT: a persistent session on ``edgeseg/#`` at QoS 1 (what is published
    while it reconnects waits for it), every message handed to ``on_message(message)`` in paho's
    thread. Returns the running client; ``loop_stop()`` and ``disconnect()`` end it."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.on_connect = lambda client, *_: client.subscribe("edgeseg/#", qos=1)
    client.on_message = lambda _client, _userdata, message: on_message(message)
    client.reconnect_delay_set(1, 2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def edgeseg_process(*args, env: dict | None = None) -> subprocess.Popen:
    """``python -m edgeseg ARGS`` in the background, as a service would run it: unbuffered, its
    stdout and stderr captured as text (``communicate()`` reads them)."""
    import os
    import sys

    return subprocess.Popen([sys.executable, "-m", "edgeseg", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
