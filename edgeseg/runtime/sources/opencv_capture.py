"""Sources read through OpenCV's VideoCapture (FFmpeg, V4L2, GStreamer backends)."""

from __future__ import annotations

import cv2
import numpy as np

from edgeseg.errors import SourceError
from edgeseg.runtime.sources.base import BadFrame, FrameLost, FrameSource, as_frame

OPEN_TIMEOUT_MS = 5000
READ_TIMEOUT_MS = 5000


class OpenCvCaptureSource(FrameSource):
    """One VideoCapture; subclasses say what to open and with which backend."""

    backend = cv2.CAP_ANY
    fix = "check the address and that the device is connected"

    def __init__(self, uri: str, target: str | int | None = None, params: list[int] | None = None):
        super().__init__(uri)
        self.target = uri if target is None else target
        self.params = params or []
        self.capture: cv2.VideoCapture | None = None

    def open(self) -> None:
        self.capture = cv2.VideoCapture(self.target, self.backend, self.params)
        if not self.capture.isOpened():
            self.capture.release()
            self.capture = None
            raise SourceError("cannot open the source", self.name, self.fix)

    @property
    def opened(self) -> cv2.VideoCapture:
        """The capture, which is there between open and close."""
        if self.capture is None:
            raise FrameLost(f"{self.name}: read before open or after close")
        return self.capture

    def _grab(self, out: np.ndarray | None) -> np.ndarray | None:
        ok, frame = self.opened.read(out) if out is not None else self.opened.read()
        return frame if ok else None

    def read(self, out: np.ndarray | None) -> np.ndarray | None:
        frame = self._grab(out)
        if frame is None:
            if self.live:
                raise FrameLost(f"{self.name}: no frame within {READ_TIMEOUT_MS} ms")
            return None
        if frame is out:
            return out
        return as_frame(frame, out, self.bit_depth)  # another size than the stream had: BadFrame

    @property
    def fps(self) -> float | None:
        fps = self.capture.get(cv2.CAP_PROP_FPS) if self.capture is not None else 0.0
        return fps if 0 < fps < 1000 else None

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None


def timeouts() -> list[int]:
    return [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]


__all__ = ["BadFrame", "FrameLost", "OpenCvCaptureSource", "timeouts"]
