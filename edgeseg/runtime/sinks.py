"""Where results go: one JSON line per frame, mask PNGs, overlay video and images, a window."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import cv2
import numpy as np

from edgeseg.errors import ConfigError
from edgeseg.runtime.outdir import stamp, stamp_seconds
from edgeseg.runtime.overlay import OverlayRenderers
from edgeseg.runtime.postprocess import Inspection, Postprocessor
from edgeseg.runtime.quota import ArchiveQuota
from edgeseg.runtime.spool import append_whole
from edgeseg.runtime.timing import STAGES

log = logging.getLogger(__name__)


class FrameResult:
    """One frame's results. ``frame`` and ``mask`` are reused buffers, valid while sinks write;
    the frame-size mask is made when a sink first asks for it."""

    __slots__ = ("index", "timestamp", "frame", "_post", "inspection", "timings", "name")

    def __init__(self, index: int, timestamp: float, frame: np.ndarray, post: Postprocessor,
                 inspection: Inspection, timings: np.ndarray, name: str | None = None):
        self.index, self.timestamp, self.frame, self._post = index, timestamp, frame, post
        self.name = name  # the frame's own name (a photo's file name), where its source has one
        self.inspection = inspection
        self.timings = timings  # seconds per stage, STAGES order (sink and end to end not yet known)

    @property
    def mask(self) -> np.ndarray:
        """The class mask at frame size."""
        return self._post.frame_mask()


class Sink:
    wants_stop = False  # a sink may end the run (a window's q key)
    quota: ArchiveQuota | None = None  # where an archive sink reports the files it writes
    lost_writes = 0  # writes that failed (a full disk, a folder gone): counted and logged, never raised

    def _lost(self, where: Path | str, why: str) -> None:
        """A write that failed (to a file, or to a plugin's target): the line goes on; the first
        few and every hundredth are logged."""
        self.lost_writes += 1
        if self.lost_writes <= 5 or self.lost_writes % 100 == 0:
            log.error("%s: not written (%s); %d write(s) lost so far", where, why, self.lost_writes)

    def write(self, result: FrameResult) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


RESULT_SCHEMA_VERSION = 1  # docs/schemas/result-v1.schema.json


class JsonLinesSink(Sink):
    """``results.jsonl``: one line per frame in the published schema (docs/schemas/): the run's
    own fields (``header``: run, source, bundle, ...), then index, timestamp, verdict, reasons,
    regions and stage timings. Appended a line at a time and never rewritten, so a stopped or
    killed run keeps every finished frame and a later run into the same folder continues it.
    With ``rotate_bytes`` or ``rotate_seconds``, a file that has grown past either is renamed
    ``results-<when it was begun>.jsonl`` and a new one begun: rotated, never truncated."""

    def __init__(self, path: Path, header: dict | None = None, rotate_bytes: int | None = None,
                 rotate_seconds: float | None = None):
        self.path, self.rotate_bytes, self.rotate_seconds = path, rotate_bytes, rotate_seconds
        self._line = self.formatter(header)
        self._open()
        if self.file.tell() and not _ends_a_line(path):  # a line cut by a killed run stays on its own
            self._append(b"\n")

    def _open(self) -> None:
        self.file = open(self.path, "ab", buffering=0)  # one write per line, straight to the file
        self.started = _first_run_time(self.path) or time.time()

    def _rotate_if_due(self) -> None:
        size, age = self.file.tell(), time.time() - self.started
        if not size or not ((self.rotate_bytes and size >= self.rotate_bytes)
                            or (self.rotate_seconds and age >= self.rotate_seconds)):
            return
        self.file.close()
        started = self.started
        while (target := self.path.with_name(f"{self.path.stem}-{stamp(started)}.jsonl")).exists():
            started += 0.001  # names sort as the files were begun
        os.replace(self.path, target)
        self._open()

    @staticmethod
    def formatter(header: dict | None):
        """``line(result) -> bytes``: a frame's result line without its newline, in the published
        schema (the MQTT sink sends the same)."""
        fields = {"schema_version": RESULT_SCHEMA_VERSION, **(header or {})}
        prefix = json.dumps(fields)[:-1] + ", "  # made once: every line starts with the run's fields

        def line(result: FrameResult) -> bytes:
            inspection = result.inspection
            frame = {"index": result.index, **({"file": result.name} if result.name else {}),
                     "timestamp": round(result.timestamp, 6), **inspection.verdict.to_dict(),
                     "regions": [r.to_dict() for r in inspection.regions],
                     "timings_ms": {stage: round(result.timings[i] * 1e3, 3) for i, stage in enumerate(STAGES[:4])}}
            return (prefix + json.dumps(frame)[1:]).encode()
        return line

    def write(self, result: FrameResult) -> None:
        if self.rotate_bytes or self.rotate_seconds:
            self._rotate_if_due()
        self._append(self._line(result) + b"\n")

    def _append(self, data: bytes) -> None:
        error = append_whole(self.file, data)
        if error is not None:
            self._lost(self.path, error.strerror or str(error))

    def close(self) -> None:
        self.file.close()


def _first_run_time(path: Path) -> float | None:
    """When the run that wrote a results file's first line started (its ``run``), if it can say."""
    try:
        with open(path, "rb") as f:
            first = json.loads(f.readline() or b"{}")
        return stamp_seconds(first["run"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _ends_a_line(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, 2)
        return f.read(1) == b"\n"


def file_stem(result: FrameResult) -> str:
    """What a frame's mask and overlay files are called: the photo's own name where the frame is
    one, else its number (``00000042``)."""
    return Path(result.name).stem if result.name else f"{result.index:08d}"


def _write_image(sink: Sink, path: Path, image: np.ndarray) -> None:
    """An image file, whole or not at all: encoded in memory, written beside it and renamed into
    place (cv2.imwrite reports success while leaving cut files on a full disk)."""
    encoded, data = cv2.imencode(path.suffix, image)
    partial = path.with_name(path.name + ".partial")
    try:
        if not encoded:
            raise OSError(f"cannot encode a {image.shape} image as {path.suffix}")
        with open(partial, "wb") as f:
            f.write(data.data)
        os.replace(partial, path)
    except OSError as e:
        partial.unlink(missing_ok=True)
        sink._lost(path, e.strerror or str(e))
        return
    if sink.quota is not None:
        sink.quota.added(path)


class MaskPngSink(Sink):
    """``masks/<photo>.png`` or ``masks/00000042.png``: the class-id mask at the frame's size."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, result: FrameResult) -> None:
        _write_image(self, self.folder / f"{file_stem(result)}.png", result.mask)


class OverlayVideoSink(Sink):
    """``video/<run>-0001.mp4``, ``-0002.mp4``, ...: the overlays as MPEG-4 part 2 (which every
    OpenCV build writes) in segments of ``segment_seconds``, at the first frame's size (frames of
    another size are scaled to it). A finished segment is a whole file: a run killed without
    warning (SIGKILL, a power cut) keeps every segment but the one it was writing, and the
    writer's index, which grows with every frame, starts afresh with each segment."""

    def __init__(self, folder: Path, run: str, renderer: OverlayRenderers, fps: float,
                 frame_size: tuple[int, int], segment_seconds: float = 60.0):
        self.folder, self.run, self.renderer, self.fps = folder, run, renderer, fps
        self.size = (frame_size[1], frame_size[0])
        self.segment_frames = max(1, round(segment_seconds * fps))
        folder.mkdir(parents=True, exist_ok=True)
        self.segments = 0
        self.frames_in_segment = 0
        self.writer = self._next_segment()
        self._scaled = np.zeros((frame_size[0], frame_size[1], 3), np.uint8)

    def _next_segment(self) -> cv2.VideoWriter:
        self.segments += 1
        path = self.folder / f"{self.run}-{self.segments:04d}.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), self.fps, self.size)
        if not writer.isOpened():
            raise ConfigError("cannot write the overlay video", path, "check the folder, or leave out --video")
        self.frames_in_segment = 0
        return writer

    def write(self, result: FrameResult) -> None:
        image = self.renderer.render(result.frame, result.mask, result.inspection.verdict, result.index)
        if image.shape != self._scaled.shape:
            image = cv2.resize(image, self.size, dst=self._scaled, interpolation=cv2.INTER_AREA)
        if self.frames_in_segment == self.segment_frames:
            self.writer.release()  # the segment is finished: a whole, playable file
            if self.quota is not None:
                self.quota.added(self.folder / f"{self.run}-{self.segments:04d}.mp4")
            self.writer = self._next_segment()
        self.writer.write(image)
        self.frames_in_segment += 1

    def close(self) -> None:
        self.writer.release()
        if self.quota is not None:
            self.quota.added(self.folder / f"{self.run}-{self.segments:04d}.mp4")


class OverlayImageSink(Sink):
    """``overlays/<photo>.jpg`` or ``overlays/00000042.jpg``: the overlay of each frame, or only of
    failed frames."""

    def __init__(self, folder: Path, renderer: OverlayRenderers, failed_only: bool = False):
        self.folder, self.renderer, self.failed_only = folder, renderer, failed_only
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, result: FrameResult) -> None:
        if self.failed_only and result.inspection.verdict.passed:
            return
        image = self.renderer.render(result.frame, result.mask, result.inspection.verdict, result.index)
        _write_image(self, self.folder / f"{file_stem(result)}.jpg", image)


class WindowSink(Sink):
    """A window with the overlay (needs an OpenCV with a GUI, not the headless wheel); q stops."""

    def __init__(self, renderer: OverlayRenderers, title: str = "edgeseg"):
        self.renderer, self.title = renderer, title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise ConfigError("this OpenCV has no window support (the headless wheel)",
                              fix="pip install opencv-python, or write overlays with --out") from None

    def write(self, result: FrameResult) -> None:
        cv2.imshow(self.title, self.renderer.render(result.frame, result.mask, result.inspection.verdict,
                                                    result.index))
        self.wants_stop = (cv2.waitKey(1) & 0xFF) == ord("q")

    def close(self) -> None:
        cv2.destroyWindow(self.title)
