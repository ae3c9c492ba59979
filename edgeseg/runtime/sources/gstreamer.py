"""GStreamer pipelines (``gst:PIPELINE``, ending in appsink) and the Jetson CSI camera (``csi://0``).

This needs an OpenCV built with GStreamer, as JetPack's is; the wheels on PyPI are not.
"""

from __future__ import annotations

import cv2

from edgeseg.errors import SourceError
from edgeseg.runtime.sources.opencv_capture import OpenCvCaptureSource


def jetson_csi_pipeline(sensor_id: int = 0, width: int = 1920, height: int = 1080, fps: int = 30,
                        flip: int = 0) -> str:
    """The usual nvarguscamerasrc pipeline: NVMM capture, converted on the VIC to BGR for appsink;
    ``drop=true max-buffers=1`` keeps only the newest frame."""
    return (f"nvarguscamerasrc sensor-id={sensor_id} ! "
            f"video/x-raw(memory:NVMM), width={width}, height={height}, framerate={fps}/1, format=NV12 ! "
            f"nvvidconv flip-method={flip} ! video/x-raw, format=BGRx ! "
            f"videoconvert ! video/x-raw, format=BGR ! appsink drop=true max-buffers=1 sync=false")


def opencv_has_gstreamer() -> bool:
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False


def pipeline_of(uri: str, width: int | None = None, height: int | None = None, fps: float | None = None) -> str:
    if uri.startswith("csi://"):
        sensor = uri.removeprefix("csi://") or "0"
        if not sensor.isdigit():
            raise SourceError(f"'{uri}' names no sensor", fix="write csi://0 for the first CSI camera")
        return jetson_csi_pipeline(int(sensor), width or 1920, height or 1080, int(fps or 30))
    return uri.removeprefix("gst:").strip()


class GStreamerSource(OpenCvCaptureSource):
    live = True
    backend = cv2.CAP_GSTREAMER
    fix = "test the pipeline with gst-launch-1.0 and end it in appsink"

    def __init__(self, uri: str, width: int | None = None, height: int | None = None, fps: float | None = None):
        super().__init__(uri, pipeline_of(uri, width, height, fps))

    def open(self) -> None:
        if not opencv_has_gstreamer():
            raise SourceError("this OpenCV was built without GStreamer", self.name,
                              "use the system OpenCV that has it (JetPack's does), or an FFmpeg address")
        super().open()
