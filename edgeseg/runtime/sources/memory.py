"""Frames already in memory, handed over in turn at full speed: for benchmarks (no decoding in
the way, as a camera driver hands over its buffers) and for one's own frame producer."""

from __future__ import annotations

import numpy as np

from edgeseg.runtime.sources.base import FrameSource, as_frame


class MemorySource(FrameSource):
    """Cycles through ``frames`` until ``count`` have been given (not live: none is dropped)."""

    def __init__(self, frames: list[np.ndarray], count: int | None = None, color_order: str = "bgr"):
        if not frames:
            raise ValueError("a memory source needs at least one frame")
        super().__init__(f"memory://{len(frames)}-frames")
        self.frames, self.count, self.position = frames, count, 0
        self.color_order = color_order

    def open(self) -> None:
        self.position = 0

    def read(self, out: np.ndarray | None) -> np.ndarray | None:
        if self.count is not None and self.position >= self.count:
            return None
        frame = self.frames[self.position % len(self.frames)]
        self.position += 1
        return as_frame(frame, out)
