"""Video files and network streams (rtsp://, http(s)://, udp://, tcp://), through OpenCV's FFmpeg."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from edgeseg.errors import SourceError
from edgeseg.runtime.sources.base import BadFrame
from edgeseg.runtime.sources.opencv_capture import OpenCvCaptureSource, timeouts

log = logging.getLogger(__name__)

NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
_SKIP_TRIES = 8  # a corrupt stretch in a file: frames tried past it before calling it the end


class VideoFileSource(OpenCvCaptureSource):
    """A video file: every frame in order, none dropped; the end of the file ends the run."""

    backend = cv2.CAP_FFMPEG
    fix = "check that the file is a video FFmpeg can read"

    def __init__(self, uri: str):
        super().__init__(uri, str(Path(uri.removeprefix("file://"))))
        self.frames_read = 0
        self._grabbed = False  # a frame grabbed past a corrupt one, still to be retrieved

    def open(self) -> None:
        if not Path(str(self.target)).is_file():
            raise SourceError("video file not found", str(self.target), "give an existing file")
        super().open()
        self.frames_read, self._grabbed = 0, False
        self.frame_count = int(self.opened.get(cv2.CAP_PROP_FRAME_COUNT) or 0)

    def _grab(self, out: np.ndarray | None) -> np.ndarray | None:
        if not self._grabbed:
            return super()._grab(out)
        self._grabbed = False
        ok, frame = self.opened.retrieve(out) if out is not None else self.opened.retrieve()
        return frame if ok else None

    def read(self, out: np.ndarray | None) -> np.ndarray | None:
        frame = super().read(out)
        if frame is not None:
            self.frames_read += 1
            return frame
        if self.frame_count and self.frames_read < self.frame_count - 1:
            # A frame that cannot be decoded: skip past it, or report where the file ended early.
            corrupt = self.frames_read
            for _ in range(_SKIP_TRIES):
                self.frames_read += 1
                if self.opened.grab():
                    self._grabbed = True
                    raise BadFrame(f"{self.name}: frame {corrupt} cannot be decoded")
            log.warning("%s: ended after %d of %d frames: the file may be truncated", self.name,
                        self.frames_read, self.frame_count)
        return None


class NetworkStreamSource(OpenCvCaptureSource):
    """A network stream: live, reopened when it drops; open and read time out after a few seconds."""

    live = True
    backend = cv2.CAP_FFMPEG
    fix = "check the address, and that the camera or server is up and reachable"

    def __init__(self, uri: str):
        super().__init__(uri, uri, timeouts())
