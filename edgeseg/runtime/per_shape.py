"""Things made once per frame shape (buffers sized for it) and reused: the resize into the
engine, the results at frame size, the overlay. Frames may change size (a folder of photos, a
camera back at another resolution); the last few shapes are kept, the least recently used goes."""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
SHAPES_KEPT = 8


class PerShape(Generic[T]):
    def __init__(self, make: Callable[[tuple[int, ...]], T], kept: int = SHAPES_KEPT):
        self.make, self.kept = make, kept
        self._made: collections.OrderedDict[tuple[int, ...], T] = collections.OrderedDict()

    def __call__(self, shape: tuple[int, ...]) -> T:
        made = self._made.get(shape)
        if made is None:
            if len(self._made) >= self.kept:
                self._made.popitem(last=False)
            made = self._made[shape] = self.make(shape)
        else:
            self._made.move_to_end(shape)
        return made
