"""Capture in its own thread into a small ring of preallocated frames.

A file source drops nothing: the capture thread waits for a free slot. A live source keeps
only the newest frame: when the loop falls behind, older frames are overwritten and counted as
dropped. A live source that fails is reopened with exponential backoff; a frame that cannot be
decoded is counted and skipped. Every frame carries its index and capture timestamp.

A source that lends its buffers (``FrameSource.lends``) is not copied from: a slot then holds the
lent frame itself, given back to the source when the slot is next filled or the capture stops
(so every lent buffer goes back from the capture thread): the copy contended with inference for
the cores (docs/decisions/0001-capture-lends-frames.md).
"""

from __future__ import annotations

import collections
import logging
import threading
import time

import numpy as np

from edgeseg.errors import SourceError
from edgeseg.runtime.sources.base import BadFrame, FrameLost, FrameSource, usable_as_is

log = logging.getLogger(__name__)

_FIRST_FRAME_TRIES = 20  # corrupt frames tolerated before the first good one
_NOT_LENT = object()  # a slot's token when it holds no lent frame (a source's token may be None)


class Capture:
    def __init__(self, source: FrameSource, slots: int = 3, backoff: tuple[float, float] = (0.25, 8.0),
                 give_up_after: float | None = None, borrow: bool = True, fixed_shape: bool = False):
        if slots < 2:
            raise ValueError("a capture ring needs at least 2 slots")
        self.source = source
        self.live = source.live
        self.slot_count = slots
        self.backoff = backoff
        self.give_up_after = give_up_after
        self.borrow = borrow  # take lent frames where the source lends (False: every slot keeps its own buffer)
        # frames of another size than the first are skipped (tile mode's crops are views made once);
        # else a slot's buffer is made again at the new size, only when the size changes
        self.fixed_shape = fixed_shape
        self.frames: list[np.ndarray] = []
        self._lent: list[object] = [_NOT_LENT] * slots  # per slot, the token of the lent frame it holds
        self._placeholder: np.ndarray | None = None
        self.lending = False  # set when the source is opened
        self.index = np.zeros(slots, np.int64)  # frame number, 0-based: the source's own where it has one
        self.stamp = np.zeros(slots, np.float64)  # wall-clock seconds when the frame was captured
        self.names: list[str | None] = [None] * slots  # the frame's own name, where its source has one
        self.captured = self.dropped = self.bad = self.reconnects = 0
        self.state = "idle"  # "running", "reconnecting", "ended"
        self._free: collections.deque[int] = collections.deque()
        self._ready: collections.deque[int] = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._ended = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._next_index = 0
        self._first_shape: tuple[int, ...] = ()

    @property
    def waiting(self) -> int:
        """Frames captured and not yet taken by the loop."""
        return len(self._ready)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """The first frame's shape (later frames may differ unless ``fixed_shape``)."""
        return self._first_shape

    def start(self, stop: threading.Event | None = None) -> None:
        """Open the source and read its first frame, which sets the ring's frame shape. A live
        source that cannot be opened or gives no frame is retried with backoff, as a reconnect,
        until it does, ``give_up_after`` passes or ``stop`` is set (a SourceError then)."""
        if self.borrow:
            self.source.lend_up_to(self.slot_count)
        first = self._first_frame_live(stop or threading.Event()) if self.live else self._first_frame()
        self._first_shape = (first[0] if isinstance(first, tuple) else first).shape
        if isinstance(first, tuple):  # lent: a slot holding no lent frame shows one placeholder
            self._placeholder = np.empty_like(first[0])
            self.frames = [self._placeholder] * self.slot_count
            self.frames[0], self._lent[0] = first
        else:
            self.frames = [np.empty_like(first) for _ in range(self.slot_count)]
            np.copyto(self.frames[0], first)
        self._publish(0)
        self._free.extend(range(1, self.slot_count))
        self.state = "running"
        self._thread = threading.Thread(target=self._run, name="edgeseg-capture", daemon=True)
        self._thread.start()

    def _first_frame(self) -> np.ndarray | tuple[np.ndarray, object]:
        """Open the source and read until a usable frame (lent: the frame and its token)."""
        self.source.open()
        self.lending = self.borrow and self.source.lends  # decided once: a reopened source lends as before
        for _ in range(_FIRST_FRAME_TRIES):
            try:
                first = self._lend(None) if self.lending else self.source.read(None)
            except BadFrame as e:
                self._count_bad(e)
                continue
            except FrameLost as e:
                self.source.close()
                raise SourceError(f"the source gave no frame ({e})", fix="check the camera or stream") from None
            if first is not None:
                return first
            break
        self.source.close()
        raise SourceError("the source gave no usable frame", self.source.name, "check that it holds images or video")

    def _first_frame_live(self, stop: threading.Event) -> np.ndarray | tuple[np.ndarray, object]:
        """A live source's first frame, waited for: a camera or stream that is not there yet is
        tried again with backoff (0.25 s doubling to 8 s), as a reconnect is."""
        delay, since, tries = self.backoff[0], time.monotonic(), 0
        while True:
            try:
                return self._first_frame()
            except SourceError as e:
                waited = time.monotonic() - since
                if self.give_up_after is not None and waited + delay > self.give_up_after:
                    raise SourceError(f"the source has not come up in {self.give_up_after:g} s ({e.what})",
                                      self.source.name, "check the camera, cable or stream, then start again") from None
                if tries == 0:
                    log.warning("%s; waiting for it (retrying with backoff)", e)
                self.state = "waiting for the source"
            if stop.wait(delay):
                raise SourceError("stopped while waiting for the source", self.source.name)
            tries += 1
            delay = min(delay * 2, self.backoff[1])

    def _lend(self, shape: tuple[int, ...] | None) -> tuple[np.ndarray, object] | None:
        """A lent frame and its token; one the ring cannot hold as it is goes straight back."""
        lent = self.source.lend()
        if lent is None:
            return None
        frame, token = lent
        if not usable_as_is(frame) or (self.fixed_shape and shape is not None and frame.shape != shape):
            self.source.give_back(token)
            raise BadFrame(f"lent frame of {frame.shape} {frame.dtype} where the stream takes "
                           f"{shape or 'mono or colour'} uint8")
        return lent

    def _fill(self, slot: int) -> np.ndarray | None:
        """The next frame into ``slot``: read into its buffer, or lent (after the lent frame the
        slot held goes back)."""
        if not self.lending:
            frame = self.source.read(self.frames[slot])
            if frame is None or frame is self.frames[slot]:
                return frame
            if self.fixed_shape:
                raise BadFrame(f"frame of {frame.shape} where the stream has {self.frames[slot].shape}")
            self.frames[slot] = frame  # this slot's buffer from now on, at the frame's size
            return frame
        self._return_lent(slot)
        lent = self._lend(self.frames[slot].shape)
        if lent is None:
            return None
        self.frames[slot], self._lent[slot] = lent
        return lent[0]

    def _return_lent(self, slot: int) -> None:
        token = self._lent[slot]
        if token is not _NOT_LENT:
            assert self._placeholder is not None  # made when the first lent frame arrived
            self.frames[slot], self._lent[slot] = self._placeholder, _NOT_LENT
            self.source.give_back(token)

    def _publish(self, slot: int) -> None:
        number = self.source.frame_number
        self.index[slot] = self._next_index if number is None else number
        self.names[slot] = self.source.frame_name
        self.stamp[slot] = time.time()
        self._next_index += 1
        self.captured += 1
        self._ready.append(slot)

    def _count_bad(self, error: Exception) -> None:
        self.bad += 1
        self._next_index += 1  # a skipped frame leaves a gap in the numbers
        if self.bad <= 10 or self.bad % 100 == 0:
            log.warning("frame skipped (%d so far): %s", self.bad, error)

    def _writable_slot(self) -> int | None:
        with self._cond:
            while not self._free:
                if self._stop.is_set():
                    return None
                if self.live and self._ready:  # the loop is behind: overwrite the oldest waiting frame
                    self.dropped += 1
                    return self._ready.popleft()
                self._cond.wait(0.1)
            return self._free.popleft()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                slot = self._writable_slot()
                if slot is None:
                    break
                try:
                    frame = self._fill(slot)
                except BadFrame as e:
                    self._count_bad(e)
                    self._give_back(slot)
                    continue
                except FrameLost as e:
                    self._give_back(slot)
                    if not self._reconnect(e):
                        break
                    continue
                if frame is None:
                    self._give_back(slot)
                    break
                with self._cond:
                    self._publish(slot)
                    self._cond.notify_all()
        except BaseException as e:  # raised again in the loop's thread by take()
            self._error = e
        finally:
            with self._cond:
                self._ended = True
                self.state = "ended"
                self._cond.notify_all()

    def _give_back(self, slot: int) -> None:
        with self._cond:
            self._free.append(slot)

    def _reconnect(self, why: Exception) -> bool:
        log.warning("%s; reconnecting", why)
        self.state = "reconnecting"
        self.source.close()
        delay, lost_at = self.backoff[0], time.monotonic()
        while not self._stop.wait(delay):
            if self.give_up_after is not None and time.monotonic() - lost_at > self.give_up_after:
                self._error = SourceError(f"the source has been gone for {self.give_up_after:g} s ({why})",
                                          fix="check the camera, cable or stream, then start again")
                return False
            try:
                self.source.open()
            except SourceError:
                delay = min(delay * 2, self.backoff[1])
                continue
            self.reconnects += 1
            self.state = "running"
            log.warning("%s: reconnected after %.1f s", self.source.name, time.monotonic() - lost_at)
            return True
        return False

    def take(self, stop: threading.Event | None = None) -> int | None:
        """The next frame's slot (the newest for a live source), or None when the source has ended,
        the capture was stopped or ``stop`` is set (while a live source is down or every frame is
        bad, too). The slot is the caller's until ``release``."""
        with self._cond:
            while not self._ready:
                if stop is not None and stop.is_set():
                    return None
                if self._ended or self._stop.is_set():
                    if self._error is not None:
                        error, self._error = self._error, None
                        raise error
                    return None
                self._cond.wait(0.1)
            if not self.live:
                return self._ready.popleft()
            slot = self._ready.pop()
            while self._ready:  # older frames the loop never got to
                self._free.append(self._ready.popleft())
                self.dropped += 1
            return slot

    def release(self, slot: int) -> None:
        with self._cond:
            self._free.append(slot)
            self._cond.notify_all()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop capturing; the source is closed unless its read is stuck past ``timeout``."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s: capture did not stop within %.0f s; leaving it", self.source.name, timeout)
                return
        for slot in range(self.slot_count):  # the capture thread has ended: no slot is filled now
            self._return_lent(slot)
        self.source.close()
