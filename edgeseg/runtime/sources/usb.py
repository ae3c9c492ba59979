"""USB and other V4L2 cameras: ``usb:0``, ``/dev/video0`` or ``v4l2:///dev/video0``."""

from __future__ import annotations

import sys

import cv2

from edgeseg.errors import SourceError
from edgeseg.runtime.sources.opencv_capture import OpenCvCaptureSource


def device_of(uri: str) -> int | str:
    if uri.startswith("usb:"):
        index = uri.removeprefix("usb:").lstrip("/")
        if not index.isdigit():
            raise SourceError(f"'{uri}' names no camera index", fix="write usb:0 for the first camera")
        return int(index)
    return uri.removeprefix("v4l2://")


class UsbCameraSource(OpenCvCaptureSource):
    live = True
    backend = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
    fix = "check that the camera is plugged in and that this user may open it (group video)"

    def __init__(self, uri: str, width: int | None = None, height: int | None = None, fps: float | None = None):
        params = []
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height),
                            (cv2.CAP_PROP_FPS, fps)):
            if value:
                params += [prop, int(value)]
        super().__init__(uri, device_of(uri), params)
