"""The FrameSource contract: frames as the camera gives them, read into the caller's buffer.

A source hands over 8-bit mono (H, W) or 8-bit colour (H, W, 3) frames in its ``color_order``;
16-bit mono is scaled to 8 bits by its ``bit_depth``. ``read(out)`` fills ``out`` when the frame
fits it (no allocation) and returns the frame, or None at the end of a file. A live source that
fails raises ``FrameLost`` and is reopened by the capture thread; a frame that cannot be decoded
raises ``BadFrame`` and is skipped.

A source that owns its frame buffers (frames held in memory, a driver's buffer pool) may lend
them instead: with ``lends`` true, ``lend()`` hands over the next frame itself, with a token,
and the capture ring holds it until ``give_back(token)``. No copy is made; the frame must stay
unchanged and valid until it is given back, even when the source is closed and reopened. A
source may decide at ``open`` whether it lends (after ``lend_up_to``, which says it may).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from edgeseg.data.imageio import scale_to_8bit
from edgeseg.errors import redact


class FrameLost(Exception):
    """A live source stopped giving frames (camera unplugged, stream cut)."""


class BadFrame(Exception):
    """One frame that cannot be used (corrupt, or of a shape or dtype the run does not take)."""


class FrameSource(ABC):
    live = False  # a live source keeps only the newest frame and is reopened when it drops
    color_order = "bgr"  # of 3-channel frames: "bgr" or "rgb"
    # 16-bit frames' full scale is 2**bit_depth - 1: a camera sets it from its pixel format; for
    # files the session sets the bundle's (the depth of the data it was trained on)
    bit_depth = 16

    def __init__(self, uri: str):
        self.uri = uri  # as given: what open() connects to; print or store ``name`` instead
        # the number of the frame last read, where the source has one (a file's frame, an image's
        # place in the folder); otherwise frames are numbered as they arrive
        self.frame_number: int | None = None
        # the name of the frame last read, where it has one (a photo's file name): results and the
        # masks and overlays written for it are named after it
        self.frame_name: str | None = None

    @abstractmethod
    def open(self) -> None:
        """Connect; raises SourceError with what to do when it cannot."""

    @abstractmethod
    def read(self, out: np.ndarray | None) -> np.ndarray | None:
        """The next frame, written into ``out`` when it fits; None at the end of a file."""

    def close(self) -> None:  # noqa: B027 - an optional hook, a no-op by default
        """Release the device or file."""

    lends = False

    def lend(self) -> tuple[np.ndarray, object] | None:
        """Where ``lends``: the next frame as the source's own buffer and a token for
        ``give_back``, or None at the end; BadFrame and FrameLost as ``read``."""
        raise NotImplementedError(f"{type(self).__name__} does not lend its frames")

    def give_back(self, token: object) -> None:  # noqa: B027 - an optional hook, a no-op by default
        """A lent frame is no longer used."""

    def lend_up_to(self, count: int) -> None:  # noqa: B027 - an optional hook, a no-op by default
        """Called before ``open`` by a caller that takes lent frames: it holds at most ``count``
        at once (a source with a buffer pool sizes it so that it keeps grabbing)."""

    @property
    def fps(self) -> float | None:
        """The source's nominal frame rate, where it has one."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    @property
    def name(self) -> str:
        """The source as it may be printed or stored: credentials in its address redacted."""
        return redact(self.uri)


def usable_as_is(frame: np.ndarray) -> bool:
    """A frame the runtime takes without conversion: uint8, mono or 3-channel, C-contiguous."""
    return (isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.flags.c_contiguous
            and (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)))


def as_frame(image: np.ndarray, out: np.ndarray | None, bit_depth: int = 16) -> np.ndarray:
    """A decoded image as the runtime takes it: uint8, mono (H, W) or BGR (H, W, 3), copied into
    ``out`` when it fits, else into a new array of its own size (frames may change size: a folder
    of photos, a stream back at another resolution); anything else is a BadFrame."""
    if image is None or image.size == 0:
        raise BadFrame("empty frame")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]  # drop alpha; BGRA's first three channels are BGR
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise BadFrame(f"a frame of shape {image.shape} is neither mono nor 3-channel colour")
    if image.dtype == np.uint16:
        if image.ndim != 2:
            raise BadFrame("16-bit colour frames are not supported; give 8-bit colour or 16-bit mono")
        return scale_to_8bit(image, bit_depth, out)
    if image.dtype != np.uint8:
        raise BadFrame(f"frames of dtype {image.dtype} are not supported; give uint8 or 16-bit mono")
    if out is None or out.shape != image.shape:  # a copy of its own: the source may reuse or free its buffer
        return np.array(image, order="C")
    np.copyto(out, image)
    return out
