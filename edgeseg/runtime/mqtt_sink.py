"""Results to the plant over MQTT (paho-mqtt): each frame's result line, as results.jsonl has it,
published at QoS 1 to ``<topic>/results`` (or only failed frames'), and a retained
``<topic>/status`` (``online``, and ``offline`` as the last will). Messages go through a queue on
disk first, so a broker that is away, or a station that restarts, loses nothing: they are sent in
order when the broker is back (a QoS 1 message may then arrive twice); past the queue's bound new
ones are dropped and counted."""

from __future__ import annotations

import collections
import logging
import os
import threading
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from edgeseg.runtime.sinks import FrameResult, JsonLinesSink, Sink
from edgeseg.runtime.spool import DiskQueue

log = logging.getLogger(__name__)

WINDOW = 64  # messages sent and not yet acknowledged, at most


class MqttConfig(BaseModel):
    """The station file's ``mqtt`` section."""

    model_config = ConfigDict(extra="forbid", strict=True)

    host: str = "127.0.0.1"
    port: int = Field(default=1883, gt=0, lt=65536)
    topic: str = Field(default="edgeseg", description="each camera publishes under <topic>/<station>/<camera>/")
    only_failed: bool = False
    queue_mb: float = Field(default=64.0, gt=0, description="results kept on disk while the broker is away")
    keepalive: int = Field(default=30, ge=5)
    username: str | None = None
    password_env: str | None = Field(default=None, description="the environment variable holding the password")


class MqttSink(Sink):
    def __init__(self, config: MqttConfig, queue_folder: Path, header: dict):
        import paho.mqtt.client as mqtt  # the station extra; only a station that reports imports it

        self.config, self.only_failed = config, config.only_failed
        self.topic = f"{config.topic}/{header.get('station') or 'run'}/{header.get('camera') or 'camera'}"
        self._lines = JsonLinesSink.formatter(header)
        self.queue = DiskQueue(queue_folder, int(config.queue_mb * 2**20))
        self._pending: collections.deque[list] = collections.deque()  # [mid, end offset, acknowledged]
        self._acked_early: set[int] = set()  # acknowledgements that came before their entry was noted
        self._lock, self._wake, self._closing = threading.Lock(), threading.Event(), False
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.topic.replace("/", "-"))
        if config.username:
            self.client.username_pw_set(config.username, os.environ.get(config.password_env or "", None))
        self.client.will_set(f"{self.topic}/status", "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(1, 8)
        self.client.on_connect, self.client.on_disconnect = self._on_connect, self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.connect_async(config.host, config.port, config.keepalive)
        self.client.loop_start()
        self._sender = threading.Thread(target=self._send, name=f"edgeseg-mqtt-{self.topic}", daemon=True)
        self._sender.start()

    def write(self, result: FrameResult) -> None:
        if self.only_failed and result.inspection.verdict.passed:
            return
        self.queue.put(self._lines(result))
        self._wake.set()

    # --- the client's callbacks (paho's network thread) -----------------------------------------

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            log.warning("%s: the MQTT broker refused the connection (%s)", self.topic, reason_code)
            return
        client.publish(f"{self.topic}/status", "online", qos=1, retain=True)
        log.info("%s: connected to the MQTT broker %s:%d", self.topic, self.config.host, self.config.port)
        self._wake.set()

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        # paho sends what it had not had acknowledged again once it is back (QoS 1); what was not
        # handed to it yet waits in the queue on disk
        if not self._closing:
            log.warning("%s: lost the MQTT broker (%s); results queue on disk", self.topic, reason_code)

    def _on_publish(self, _client, _userdata, mid, _reason_code, _properties) -> None:
        with self._lock:
            for entry in self._pending:
                if entry[0] == mid:
                    entry[2] = True
                    break
            else:
                self._acked_early.add(mid)
        self._advance()

    def _advance(self) -> None:
        """Mark delivered on disk what was acknowledged, in order, up to the first that was not."""
        delivered = None
        with self._lock:
            while self._pending and self._pending[0][2]:
                delivered = self._pending.popleft()[1]
        if delivered is not None:
            self.queue.mark_delivered(delivered)
            self._wake.set()

    # --- the sender (its own thread) ------------------------------------------------------------

    def _send(self) -> None:
        while not (self._closing and self.queue.waiting == 0):
            self._wake.wait(0.2)
            self._wake.clear()
            if not self.client.is_connected():
                continue
            with self._lock:
                room = WINDOW - len(self._pending)
            for payload, end in self.queue.take(room) if room > 0 else []:
                # not under our lock: paho calls on_publish holding its own, which publish() takes
                info = self.client.publish(f"{self.topic}/results", payload, qos=1)
                with self._lock:
                    acked = info.mid in self._acked_early
                    self._acked_early.discard(info.mid)
                    self._pending.append([info.mid, end, acked])
                if acked:
                    self._advance()

    def close(self, timeout: float = 5.0) -> None:
        """Send what the queue holds while the broker is there (``timeout`` at most), then say
        ``offline``; what is left stays on disk for the next start."""
        self._closing = True
        self._wake.set()
        self._sender.join(timeout if self.client.is_connected() else 0.5)
        if self.client.is_connected():
            self.client.publish(f"{self.topic}/status", "offline", qos=1, retain=True).wait_for_publish(1.0)
        self.client.disconnect()
        self.client.loop_stop()
        self.lost_writes += self.queue.dropped
        if self.queue.waiting:
            log.warning("%s: %d bytes of results wait on disk for the MQTT broker", self.topic, self.queue.waiting)
        self.queue.close()
