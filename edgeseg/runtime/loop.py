"""The inspection loop: frames from the capture ring through the engine into results and sinks.

Latency mode runs one request per frame. Throughput mode keeps several requests in flight (the
engine's acquire/submit: OpenVINO infer requests, CUDA streams on TensorRT, collected oldest first
in this thread) and finishes results in frame order; its "infer" stage runs from submission to
collection. Tile mode runs a frame's tiles through the requests and stitches them.
After warm-up a frame allocates no buffer: every array here is made once.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from edgeseg.engines.base import Engine
from edgeseg.runtime.capture import Capture
from edgeseg.runtime.per_shape import PerShape
from edgeseg.runtime.postprocess import Postprocessor
from edgeseg.runtime.preprocess import Preprocessor
from edgeseg.runtime.rules import InspectionRules
from edgeseg.runtime.sinks import FrameResult, Sink
from edgeseg.runtime.tiles import TileGrid
from edgeseg.runtime.timing import STAGES, StageTimes

_WAIT, _PRE, _INFER, _POST, _SINK, _E2E = range(len(STAGES))


@dataclass
class RunSummary:
    frames: int = 0
    failed: int = 0
    dropped: int = 0
    bad_frames: int = 0
    reconnects: int = 0
    seconds: float = 0.0
    ended_by: str = ""  # "end of source", "max frames", "stop request", "sink", "source lost"
    timing: dict = field(default_factory=dict)
    error: Exception | None = None
    lost_writes: int = 0  # results, masks or overlays a sink could not write (a full disk)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        return {"frames": self.frames, "passed": self.frames - self.failed, "failed": self.failed,
                "dropped": self.dropped, "bad_frames": self.bad_frames, "reconnects": self.reconnects,
                "lost_writes": self.lost_writes,
                "seconds": round(self.seconds, 3), "fps": round(self.fps, 2), "ended_by": self.ended_by,
                "timing_ms": self.timing}


class StatusLine:
    """fps, p50 latency and dropped frames on one line of stderr, redrawn twice a second (every
    30 s, as full lines, when stderr is not a terminal)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = 0.5 if self.tty else 30.0
        self.next_at = time.perf_counter() + self.interval
        self.last = (0, time.perf_counter())

    def update(self, loop: InspectionLoop, now: float) -> None:
        if now < self.next_at:
            return
        self.next_at = now + self.interval
        frames, then = loop.frames, self.last[1]
        fps = (frames - self.last[0]) / (now - then)
        self.last = (frames, now)
        capture = loop.capture
        text = (f"frames {frames}  {fps:6.1f} fps  p50 {loop.times.p50_ms():6.2f} ms  failed {loop.failed}  "
                f"dropped {capture.dropped}  bad {capture.bad}  {capture.state}")
        self.stream.write(f"\r{text}\033[K" if self.tty else text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


class InspectionLoop:
    """The steps every mode shares: take a frame from the ring, process it, inspect the mask,
    write the sinks, time each stage. ``make_loop`` picks the mode's subclass once."""

    def __init__(self, engine: Engine, capture: Capture, rules: InspectionRules, class_names: list[str],
                 sinks: list[Sink] | None = None, tiles: TileGrid | None = None, source_order: str = "bgr",
                 status: StatusLine | None = None, stop: threading.Event | None = None):
        self.engine, self.capture, self.rules, self.tiles = engine, capture, rules, tiles
        self.sinks: list[Sink] = sinks if sinks is not None else []  # the caller's list: sinks added later count
        self.status = status
        self.on_frame: Callable[[], None] | None = None  # called after each frame's results are written
        self.class_names, self.source_order = class_names, source_order
        self._processors = PerShape(self._make_processors)
        self.pre, self.post = self._processors(capture.frame_shape)  # the first frame's
        self.times = StageTimes()
        self.frames = self.failed = 0
        self._t = np.zeros(len(STAGES), np.float64)
        self._stop = stop or threading.Event()
        self.min_interval = 0.0  # seconds between frames taken: a frame-rate cap (0: none)
        self._last_take = 0.0

    throughput = False

    def stop(self) -> None:
        """Ask the loop to stop after the frame at hand (safe from a signal handler). The request
        ends the run it stops, or the next one if none is running; a later run goes on."""
        self._stop.set()

    def run(self, max_frames: int | None = None) -> RunSummary:
        started = time.perf_counter()
        try:
            while (ended_by := self._should_stop(max_frames)) is None:
                if not self._one_frame():  # no frame came: the source ended, or a stop request cut the wait
                    ended_by = "stop request" if self._stop.is_set() else "end of source"
                    break
        finally:
            self._finish_in_flight()  # every frame already submitted gets its results written
            for sink in self.sinks:
                sink.close()
            if self.status is not None:
                self.status.close()
            self._stop.clear()  # the request ended this run; a later run goes on
        capture = self.capture
        return RunSummary(self.frames, self.failed, capture.dropped, capture.bad, capture.reconnects,
                          time.perf_counter() - started, ended_by, self.times.summary(),
                          lost_writes=sum(sink.lost_writes for sink in self.sinks))

    def _one_frame(self) -> bool:
        if self.min_interval:  # capped: wait out the rest of the frame's period (a stop cuts it short)
            rest = self._last_take + self.min_interval - time.perf_counter()
            if rest > 0 and self._stop.wait(rest):
                return False
            self._last_take = time.perf_counter()
        start = time.perf_counter()
        slot = self.capture.take(self._stop)  # a stop request is heard while no frame comes, too
        if slot is None:
            return False
        taken = time.perf_counter()
        self._t[_WAIT] = taken - start
        self._process(slot, start, taken)
        return True

    def _process(self, slot: int, start: float, taken: float) -> None:
        raise NotImplementedError

    def _finish_in_flight(self) -> None:
        """Write the results of frames still in flight (only throughput mode has any)."""

    def _in_flight_count(self) -> int:
        return 0

    def _make_processors(self, shape: tuple[int, ...]) -> tuple[Preprocessor, Postprocessor]:
        """The resize into the engine and the results at frame size, for frames of this shape."""
        return (Preprocessor(self.engine, shape, self.source_order),
                Postprocessor(self.engine, (shape[0], shape[1]), self.rules, self.class_names, self.tiles))

    def _deliver(self, slot: int, t: np.ndarray, taken: float, post_start: float, defects: bool,
                 post: Postprocessor) -> None:
        """Inspect ``post.mask``, write to the sinks, record the times; frees the ring slot."""
        capture = self.capture
        inspection = post.inspect(defects)
        sink_start = time.perf_counter()
        t[_POST] = sink_start - post_start
        result = FrameResult(int(capture.index[slot]), float(capture.stamp[slot]), capture.frames[slot],
                             post, inspection, t, capture.names[slot])
        for sink in self.sinks:
            sink.write(result)
        end = time.perf_counter()
        capture.release(slot)
        t[_SINK] = end - sink_start
        t[_E2E] = end - taken
        self.times.add(t)
        self.frames += 1
        self.failed += not inspection.verdict.passed
        if self.status is not None:
            self.status.update(self, end)
        if self.on_frame is not None:
            self.on_frame()

    def _should_stop(self, max_frames: int | None) -> str | None:
        if self._stop.is_set():
            return "stop request"
        if max_frames is not None and self.frames + self._in_flight_count() >= max_frames:
            return "max frames"
        if any(sink.wants_stop for sink in self.sinks):
            return "sink"
        return None


class LatencyLoop(InspectionLoop):
    """One request: each frame is resized into the engine, inferred and inspected in turn."""

    def _process(self, slot: int, start: float, taken: float) -> None:
        t, frame = self._t, self.capture.frames[slot]
        pre, post = self._processors(frame.shape)
        pre(frame)
        inferred_from = time.perf_counter()
        t[_PRE] = inferred_from - taken
        self.engine.infer()
        post_start = time.perf_counter()
        t[_INFER] = post_start - inferred_from
        self._deliver(slot, t, taken, post_start, post.resized(), post)


class TiledLoop(InspectionLoop):
    """Each frame cut into overlapping tiles at native resolution, run through the requests and
    stitched into one frame-size mask."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        assert self.tiles is not None
        tiles = self.tiles  # per ring slot and tile, the crop view, made once
        self._crops = [[frame[tiles.crop(t)] for t in tiles.tiles] for frame in self.capture.frames]
        self._tile_of = [0] * self.engine.requests

    def _process(self, slot: int, start: float, taken: float) -> None:
        t, engine, crops = self._t, self.engine, self._crops[slot]
        t[_PRE] = 0.0
        for number in range(len(crops)):
            request = engine.acquire()
            copy_start = time.perf_counter()
            self.pre.tile(crops[number], request)
            t[_PRE] += time.perf_counter() - copy_start
            self._tile_of[request] = number
            engine.submit(request, self._stitch)
        engine.drain()
        post_start = time.perf_counter()
        t[_INFER] = post_start - taken - t[_PRE]  # tiles run, and are stitched, while others are copied
        self._deliver(slot, t, taken, post_start, cv2.countNonZero(self.post.frame_mask()) > 0, self.post)

    def _stitch(self, request: int) -> None:
        self.post.stitch(request, self._tile_of[request])


class ThroughputLoop(InspectionLoop):
    """Several requests in flight, collected oldest first; results are written in frame order.
    The "infer" stage runs from submission to collection."""

    throughput = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        r = self.engine.requests
        self._done = [threading.Event() for _ in range(r)]
        self._pending = [False] * r
        self._slot_of = [0] * r
        self._started = np.zeros((r, 4), np.float64)  # take, taken, preprocess, submitted (perf_counter)
        self._finished_at = np.zeros(r, np.float64)
        self._in_flight: collections.deque[int] = collections.deque()
        self._post_of = [self.post] * r  # the results side for the frame each request holds

    def _process(self, slot: int, start: float, taken: float) -> None:
        engine = self.engine
        request = engine.acquire()
        while self._pending[request]:  # its last result is not written yet: finish in order up to it
            self._finish(self._in_flight.popleft())
        pre_start = time.perf_counter()
        frame = self.capture.frames[slot]
        pre, self._post_of[request] = self._processors(frame.shape)
        pre(frame, request)
        submitted = time.perf_counter()
        self._started[request] = (start, taken, pre_start, submitted)
        self._slot_of[request] = slot
        self._pending[request] = True
        self._in_flight.append(request)
        engine.submit(request, self._on_done)

    def _on_done(self, request: int) -> None:
        self._finished_at[request] = time.perf_counter()
        self._done[request].set()

    def _finish(self, request: int) -> None:
        self._done[request].wait()
        self._done[request].clear()
        self._pending[request] = False
        t = self._t
        start, taken, pre_start, submitted = self._started[request]
        t[_WAIT], t[_PRE] = taken - start, submitted - pre_start  # the wait for a free request is in end_to_end
        t[_INFER] = self._finished_at[request] - submitted
        post_start = time.perf_counter()
        post = self._post_of[request]
        self._deliver(self._slot_of[request], t, taken, post_start, post.resized(request), post)

    def _finish_in_flight(self) -> None:
        self.engine.drain()
        while self._in_flight:
            self._finish(self._in_flight.popleft())

    def _in_flight_count(self) -> int:
        return len(self._in_flight)  # taken frames count toward max_frames, finished or not


def make_loop(engine: Engine, capture: Capture, rules: InspectionRules, class_names: list[str],
              sinks: list[Sink] | None = None, tiles: TileGrid | None = None, throughput: bool = False,
              source_order: str = "bgr", status: StatusLine | None = None,
              stop: threading.Event | None = None) -> InspectionLoop:
    """The loop for a mode, chosen once: tiled, throughput or latency."""
    if tiles is not None and throughput:
        raise ValueError("tile mode already keeps the requests busy; it runs without throughput mode")
    kind = TiledLoop if tiles is not None else ThroughputLoop if throughput else LatencyLoop
    return kind(engine, capture, rules, class_names, sinks, tiles, source_order, status, stop)
