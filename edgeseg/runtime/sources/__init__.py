"""Frame sources chosen by URI. A new source is one module and one line in ``open_source``.

| URI | source |
|---|---|
| ``video.mp4``, ``file://video.mp4`` | VideoFileSource (every frame, none dropped) |
| ``dir/``, ``'dir/*.png'`` | ImageFolderSource (name order) |
| ``usb:0``, ``/dev/video0``, ``v4l2:///dev/video0`` | UsbCameraSource (V4L2) |
| ``rtsp://``, ``http://``, ``udp://``, ``tcp://``, ``srt://`` | NetworkStreamSource (FFmpeg) |
| ``gst:PIPELINE ! appsink``, ``csi://0`` | GStreamerSource (OpenCV with GStreamer, Jetson CSI) |
| ``pylon://``, ``pylon://SERIAL`` | PylonSource (Basler GenICam, optional extra) |
"""

from __future__ import annotations

from pathlib import Path

from edgeseg.errors import SourceError, redact
from edgeseg.runtime.sources.base import BadFrame, FrameLost, FrameSource
from edgeseg.runtime.sources.image_folder import is_glob


def open_source(uri: str, width: int | None = None, height: int | None = None, fps: float | None = None
                ) -> FrameSource:
    """The source a URI names (not yet opened). ``width``, ``height`` and ``fps`` are asked of
    cameras that take them."""
    from edgeseg.runtime.sources import gstreamer, image_folder, pylon, usb, video

    uri = str(uri)
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme in video.NETWORK_SCHEMES:
        return video.NetworkStreamSource(uri)
    if uri.startswith("usb:") or uri.startswith("/dev/video") or scheme == "v4l2":
        return usb.UsbCameraSource(uri, width, height, fps)
    if uri.startswith("gst:") or scheme == "csi" or " ! " in uri:
        return gstreamer.GStreamerSource(uri, width, height, fps)
    if scheme == "pylon":
        return pylon.PylonSource(uri)
    if scheme in ("", "file"):
        path = Path(uri.removeprefix("file://"))
        if path.is_dir():  # what exists is taken as named: cam[1]/ and line[2].mp4 are no patterns
            return image_folder.ImageFolderSource(uri)
        if path.is_file():
            return video.VideoFileSource(uri)
        if is_glob(uri):
            return image_folder.ImageFolderSource(uri)
        raise SourceError("no such file or folder", path, "give a video, a folder of images, a camera "
                                                          "(usb:0, pylon://) or a stream address")
    raise SourceError(f"unknown source '{redact(uri)}'", fix="see 'edgeseg run --help' for the sources it takes")


__all__ = ["BadFrame", "FrameLost", "FrameSource", "open_source"]
