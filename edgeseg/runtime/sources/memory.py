"""Frames already in memory, handed over in turn at full speed: for benchmarks (no decoding in
the way, as a camera driver hands over its buffers) and for one's own frame producer. Frames the
runtime takes as they are (uint8 mono or 3-channel, C-contiguous) are lent to the capture ring,
not copied into it, as a zero-copy driver hands over its buffers."""

from __future__ import annotations

import numpy as np

from edgeseg.runtime.sources.base import FrameSource, as_frame, usable_as_is


class MemorySource(FrameSource):
    """Cycles through ``frames`` until ``count`` have been given (not live: none is dropped)."""

    def __init__(self, frames: list[np.ndarray], count: int | None = None, color_order: str = "bgr"):
        if not frames:
            raise ValueError("a memory source needs at least one frame")
        super().__init__(f"memory://{len(frames)}-frames")
        self.frames, self.count, self.position = frames, count, 0
        self.color_order = color_order
        self.lends = all(usable_as_is(frame) for frame in frames)

    def open(self) -> None:
        self.position = 0

    def _next(self) -> np.ndarray | None:
        if self.count is not None and self.position >= self.count:
            return None
        frame = self.frames[self.position % len(self.frames)]
        self.position += 1
        return frame

    def read(self, out: np.ndarray | None) -> np.ndarray | None:
        frame = self._next()
        return None if frame is None else as_frame(frame, out, self.bit_depth)

    def lend(self) -> tuple[np.ndarray, None] | None:
        frame = self._next()
        return None if frame is None else (frame, None)  # the frames outlive the run: nothing to give back
