"""A folder of images or a glob pattern, in name order; an image that cannot be read is skipped."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np

from edgeseg.data.imageio import IMAGE_SUFFIXES, read_image
from edgeseg.errors import DatasetError, SourceError
from edgeseg.runtime.sources.base import BadFrame, FrameSource, as_frame


def is_glob(uri: str) -> bool:
    return any(c in uri for c in "*?[")


class ImageFolderSource(FrameSource):
    def __init__(self, uri: str):
        super().__init__(uri)
        self.paths: list[Path] = []
        self.position = 0

    def open(self) -> None:
        folder = Path(self.uri.removeprefix("file://"))
        if folder.is_dir():  # a folder that exists is a folder, even with [ or * in its name
            self.paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif is_glob(self.uri):
            self.paths = sorted(Path(p) for p in glob.glob(self.uri, recursive=True)
                                if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        else:
            raise SourceError("no such folder", self.uri, "give a folder of images or a pattern such as 'dir/*.png'")
        if not self.paths:
            raise SourceError("no images found", self.uri, f"images end in {', '.join(IMAGE_SUFFIXES)}")
        self.position = 0

    def read(self, out: np.ndarray | None) -> np.ndarray | None:
        if self.position >= len(self.paths):
            return None
        path = self.paths[self.position]
        self.frame_number, self.frame_name = self.position, path.name
        self.position += 1
        try:
            image = read_image(path, None, self.bit_depth)
        except DatasetError as e:
            raise BadFrame(str(e)) from None
        try:
            return as_frame(image, out, self.bit_depth)
        except BadFrame as e:
            raise BadFrame(f"{path}: {e}") from None
