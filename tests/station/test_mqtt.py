"""Results reach the plant over MQTT, through a real broker (Debian's mosquitto) that goes away
mid-run and comes back: every frame's message arrives (QoS 1 may repeat one; none is missing)."""

from __future__ import annotations

import json
import signal
import threading
import time

from media import edgeseg_process, free_port, serve_stream, start_broker, stop, subscribe, wait_for


class Subscriber:
    """The plant's side: a persistent session, so what is published while it reconnects waits for it."""

    def __init__(self, port: int):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = subscribe(port, "plant", self._on_message)

    def _on_message(self, message) -> None:
        with self.lock:
            self.messages.append((message.topic, message.payload, message.retain))

    def results(self) -> list[dict]:
        with self.lock:
            return [json.loads(payload) for topic, payload, _ in self.messages if topic.endswith("/results")]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_every_result_reaches_the_broker_though_it_goes_away_mid_run(bundle_factory, tmp_path):
    import yaml

    port, url = free_port(), f"udp://127.0.0.1:{free_port()}?pkt_size=1316"
    broker = start_broker(port, tmp_path / "broker")
    plant = Subscriber(port)
    stream = serve_stream(url, seconds=90)
    station = tmp_path / "station.yaml"
    camera = {"name": "top", "source": url.split("?")[0], "bundle": str(bundle_factory("onnxruntime", "fp32").path),
              "max_fps": 10}
    station.write_text(yaml.safe_dump({"station": "line-3", "results": "results", "mqtt": {"port": port},
                                       "metrics": None, "cameras": [camera]}))
    serve = edgeseg_process("serve", station)
    try:
        assert wait_for(lambda: len(plant.results()) >= 10, timeout=60)
        stop(broker)  # the broker goes away for a few seconds; frames keep coming and are queued on disk
        time.sleep(3)
        lines = tmp_path / "results" / "top" / "results.jsonl"
        during = lines.read_text().count("\n")
        broker = start_broker(port, tmp_path / "broker")
        assert wait_for(lambda: len({r["index"] for r in plant.results()}) >= during + 5, timeout=60)
        serve.send_signal(signal.SIGTERM)
        stdout, stderr = serve.communicate(timeout=30)
        time.sleep(1)
    finally:
        serve.kill()
        stop(stream)
        plant.close()
        stop(broker)
    assert serve.returncode == 0, stderr
    written = [json.loads(line) for line in lines.read_text().splitlines()]
    sent = plant.results()
    assert {(r["run"], r["index"]) for r in written} <= {(r["run"], r["index"]) for r in sent}  # none missing
    assert len(written) > during > 10 and all(r["camera"] == "top" for r in sent)
    status = [payload for topic, payload, _ in plant.messages if topic == "edgeseg/line-3/top/status"]
    assert status[0] == b"online" and status[-1] == b"offline"
    assert "lost the MQTT broker" in stderr
