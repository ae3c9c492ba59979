"""Basler GenICam cameras through pypylon (``pip install edgeseg[pylon]``): ``pylon://`` for the
first camera, ``pylon://SERIAL`` for one by serial number, ``?pixel_format=Mono12`` to set the
format. Frames are grabbed with the newest-only strategy. 8-bit frames are lent to the capture
ring in pylon's own buffer (no copy): the grab result is held until the ring gives it back, and
pylon gets enough buffers to keep grabbing meanwhile; 10- to 16-bit frames are scaled to 8 bits
into the ring's buffer. Without a camera, ``PYLON_CAMEMU=1`` makes pylon emulate one."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from edgeseg.errors import SourceError, first_line
from edgeseg.runtime.sources.base import BadFrame, FrameLost, FrameSource, as_frame

GRAB_TIMEOUT_MS = 5000
SPARE_BUFFERS = 4  # pylon's buffers beyond those lent out: newest-only grabbing needs a few free
# pixel format -> (bit depth, colour order); frames come as they are, only 16-bit mono is scaled
PIXEL_FORMATS = {"Mono8": (8, "gray"), "Mono10": (10, "gray"), "Mono12": (12, "gray"), "Mono16": (16, "gray"),
                 "BGR8": (8, "bgr"), "BGR8Packed": (8, "bgr"), "RGB8": (8, "rgb"), "RGB8Packed": (8, "rgb")}


def _pylon():
    try:
        from pypylon import pylon
    except ImportError:
        raise SourceError("pypylon is not installed", fix="pip install 'edgeseg[pylon]'") from None
    return pylon


class PylonSource(FrameSource):
    live = True

    def __init__(self, uri: str):
        super().__init__(uri)
        parts = urlsplit(uri)
        self.serial = (parts.netloc + parts.path).strip("/") or None
        self.pixel_format = (parse_qs(parts.query).get("pixel_format") or [""])[0] or None
        self.camera: Any = None  # pylon's InstantCamera, once open
        self.bit_depth = 8
        self.held = 0  # how many lent frames the caller may hold at once (0: it takes no lent frames)

    def lend_up_to(self, count: int) -> None:
        self.held = count

    def open(self) -> None:
        pylon = _pylon()
        factory = pylon.TlFactory.GetInstance()
        devices = factory.EnumerateDevices()
        if self.serial:
            devices = [d for d in devices if d.GetSerialNumber() == self.serial]
        if not devices:
            raise SourceError(f"no Basler camera{' with serial ' + self.serial if self.serial else ''} found",
                              self.name, "check the cable and pylon Viewer; PYLON_CAMEMU=1 emulates one")
        try:
            camera = pylon.InstantCamera(factory.CreateDevice(devices[0]))
            camera.Open()
            if self.pixel_format:
                camera.PixelFormat.SetValue(self.pixel_format)
            pixel_format = camera.PixelFormat.GetValue()
            if pixel_format not in PIXEL_FORMATS:
                camera.Close()
                raise SourceError(f"pixel format {pixel_format} is not supported", self.name,
                                  f"add ?pixel_format= one of {', '.join(PIXEL_FORMATS)}")
            self.bit_depth, self.color_order = PIXEL_FORMATS[pixel_format]
            self.lends = self.held > 0 and self.bit_depth == 8
            if self.lends and camera.MaxNumBuffer.GetValue() < self.held + SPARE_BUFFERS:
                camera.MaxNumBuffer.SetValue(self.held + SPARE_BUFFERS)
            camera.StartGrabbing(pylon.GrabStrategy_LatestImageOnly)
        except SourceError:
            raise
        except Exception as e:  # a GenICam error: the camera is busy, gone or refuses the setting
            raise SourceError(f"cannot open the camera ({first_line(e)})", self.name,
                              "close other programs using it (pylon Viewer) and check the settings") from None
        self.camera = camera

    def _retrieve(self):
        """The next good grab result (the caller releases it)."""
        pylon = _pylon()
        try:
            result = self.camera.RetrieveResult(GRAB_TIMEOUT_MS, pylon.TimeoutHandling_Return)
        except Exception as e:
            raise FrameLost(f"{self.name}: {first_line(e)}") from None
        if result is None or not result.IsValid():
            raise FrameLost(f"{self.name}: no frame within {GRAB_TIMEOUT_MS} ms")
        if not result.GrabSucceeded():
            try:
                if self.camera.IsCameraDeviceRemoved():
                    raise FrameLost(f"{self.name}: the camera was removed")
                raise BadFrame(f"{self.name}: grab failed ({result.GetErrorDescription()})")
            finally:
                result.Release()
        return result

    def read(self, out: np.ndarray | None) -> np.ndarray | None:
        result = self._retrieve()
        try:
            with result.GetArrayZeroCopy() as image:
                return as_frame(image, out, self.bit_depth)
        finally:
            result.Release()

    def lend(self) -> tuple[np.ndarray, object] | None:
        result = self._retrieve()
        shape = (result.GetHeight(), result.GetWidth()) + (() if self.color_order == "gray" else (3,))
        frame = np.frombuffer(result.GetImageMemoryView(), np.uint8)
        if frame.size != int(np.prod(shape)):  # padded lines: not a plain array
            result.Release()
            raise BadFrame(f"{self.name}: a frame of {frame.size} bytes is not {shape} (line padding?)")
        # a held grab result keeps its buffer valid even when a reconnect closes the camera (tested)
        return frame.reshape(shape), result

    def give_back(self, token) -> None:
        token.Release()

    def close(self) -> None:
        if self.camera is not None:
            try:
                self.camera.StopGrabbing()
                self.camera.Close()
            except Exception:  # a removed camera cannot be closed cleanly; it is gone either way
                pass
            self.camera = None
