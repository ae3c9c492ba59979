"""Failed parts (or every frame) POSTed to an HTTP endpoint as their result line's JSON, with
retry and backoff: through a queue on disk, in order, so an endpoint that is down or answers
with an error loses nothing (past the queue's bound new ones are dropped and counted)."""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from edgeseg.errors import redact
from edgeseg.runtime.sinks import FrameResult, JsonLinesSink, Sink
from edgeseg.runtime.spool import DiskQueue

log = logging.getLogger(__name__)

BACKOFF = (0.5, 30.0)  # seconds before a failed POST is tried again, doubling to the cap


class WebhookConfig(BaseModel):
    """The station file's ``webhook`` section."""

    model_config = ConfigDict(extra="forbid", strict=True)

    url: str = Field(pattern=r"^https?://", description="where each result is POSTed (application/json)")
    only_failed: bool = True
    timeout: float = Field(default=5.0, gt=0)
    queue_mb: float = Field(default=16.0, gt=0)


class WebhookSink(Sink):
    def __init__(self, config: WebhookConfig, queue_folder: Path, header: dict):
        self.config, self.where = config, redact(config.url)
        self._lines = JsonLinesSink.formatter(header)
        self.queue = DiskQueue(queue_folder, int(config.queue_mb * 2**20))
        self._wake, self._closing, self._deadline = threading.Event(), False, 0.0
        self._sender = threading.Thread(target=self._send_all, name="edgeseg-webhook", daemon=True)
        self._sender.start()

    def write(self, result: FrameResult) -> None:
        if self.config.only_failed and result.inspection.verdict.passed:
            return
        self.queue.put(self._lines(result))
        self._wake.set()

    def _send_all(self) -> None:
        delay = BACKOFF[0]
        while not (self._closing and self.queue.waiting == 0):
            self._wake.wait(0.2)
            self._wake.clear()
            for payload, end in self.queue.take(16):
                while not self._post(payload):
                    if not self._wait(delay):
                        self.queue.rewind()  # what is left is sent at the next start
                        return
                    delay = min(delay * 2, BACKOFF[1])
                delay = BACKOFF[0]
                self.queue.mark_delivered(end)

    def _wait(self, seconds: float) -> bool:
        """Sleep before the next try; False once closing and its time is up."""
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            if self._closing and time.monotonic() >= self._deadline:
                return False
            time.sleep(0.05)
        return True

    def _post(self, payload: bytes) -> bool:
        request = urllib.request.Request(self.config.url, data=payload, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout) as answer:
                return 200 <= answer.status < 300
        except (urllib.error.URLError, OSError) as e:
            log.warning("webhook %s: %s; trying again", self.where, getattr(e, "reason", e))
            return False

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued, retrying (``timeout`` at most); what is left stays on disk for the
        next start."""
        self._deadline = time.monotonic() + timeout
        self._closing = True
        self._wake.set()
        self._sender.join(timeout + 1.0)
        self.lost_writes += self.queue.dropped
        if self._sender.is_alive():  # a POST still waiting on the endpoint: its queue stays open for it
            log.warning("webhook %s: still sending at exit; what is left is sent at the next start", self.where)
            return
        self.queue.close()
