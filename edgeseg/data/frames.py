"""Frames as the runtime sees them: whole images stretched to the model's input, for
calibration, parity gates and verification (numpy and OpenCV only: run side)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgeseg.data.imageio import IMAGE_SUFFIXES, read_image, read_mask
from edgeseg.data.layout import DatasetLayout
from edgeseg.errors import DatasetError

# Mask ids are scaled centre to centre, as cv2's linear resize maps the image: INTER_NEAREST maps
# from pixel corners and shifts labels by up to a pixel, which costs small defects much of their
# IoU (docs/measurements/training.md).
MASK_RESIZE = cv2.INTER_NEAREST_EXACT


def resize_pair(image: np.ndarray, mask: np.ndarray, width: int, height: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Stretch a whole image and mask to width x height (square by default), as the runtime does
    with a whole frame: linear for the image, nearest for the mask so labels never blend."""
    size = (width, height or width)
    return (cv2.resize(image, size, interpolation=cv2.INTER_LINEAR),
            cv2.resize(mask, size, interpolation=MASK_RESIZE))


@dataclass
class FrameSet:
    """Frames (N, H, W, C) uint8 at the model's input size, with ground truth (N, H, W) where the
    folder has masks, and each image's ground truth at its own size (as a station writes masks)."""
    frames: np.ndarray
    truth: np.ndarray | None
    source: str
    names: list[str] = field(default_factory=list)  # each frame's image stem
    native_truth: list[np.ndarray] | None = None  # (h, w) class ids at the image's own size

    def __len__(self) -> int:
        return len(self.frames)


def spread_evenly(items: list, limit: int) -> list:
    """Up to ``limit`` items spread evenly over the list (deterministic, covers every class of
    a sorted data set rather than its first stems)."""
    if len(items) <= limit:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, limit).round().astype(int)]


def _as_frame(image: np.ndarray) -> np.ndarray:
    return image[..., None] if image.ndim == 2 else image


def is_dataset(folder: Path) -> bool:
    return (folder / "images").is_dir() and (folder / "classes.csv").is_file()


def load_frames(folder: str | Path, channels: int, height: int, width: int, limit: int | None,
                split: str | None = None, with_masks: bool = True, require_split: bool = False,
                bit_depth: int = 16) -> FrameSet:
    """Frames from a data set folder (its ``split``, or every paired image) or from a plain folder
    of images (no ground truth); ``limit`` of them spread evenly (None: all); 16-bit images scaled
    by ``bit_depth`` (the model's, from its checkpoint or manifest). With ``require_split`` a data
    set without that split is an error instead of every image (training images included) being used."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError("folder not found", folder, "give a data set folder or a folder of images")
    if is_dataset(folder):
        layout = DatasetLayout.open(folder)
        stems, label = (layout.split_stems(split), split) if split else ([], "all")
        if not stems and split and require_split:
            have = sorted(layout.split_lists) or ["train", "val"]
            raise DatasetError(f"the data set has no '{split}' split", folder,
                               f"its splits are {', '.join(have)}: give --split one of them")
        if not stems:
            stems, label = layout.paired_stems, "all"
        if not stems:
            raise DatasetError("no image in this data set has a mask", folder, "run edgeseg data check on it")
        picked = spread_evenly(stems, limit or len(stems))
        frames, truth, native = [], [], []
        for stem in picked:
            image = read_image(layout.images[stem], channels, bit_depth)
            if with_masks:
                native.append(read_mask(layout.masks[stem], layout.classes))
                image, mask = resize_pair(image, native[-1], width, height)
                truth.append(mask)
            else:
                image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
            frames.append(_as_frame(image))
        return FrameSet(np.stack(frames), np.stack(truth) if with_masks else None, f"{folder} ({label})",
                        list(picked), native if with_masks else None)
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    paths = spread_evenly(images, limit or len(images))
    if not paths:
        raise DatasetError("no images in this folder", folder,
                           f"give a folder of {', '.join(IMAGE_SUFFIXES)} frames or a data set folder")
    frames = [_as_frame(cv2.resize(read_image(p, channels, bit_depth), (width, height), interpolation=cv2.INTER_LINEAR))
              for p in paths]
    return FrameSet(np.stack(frames), None, str(folder), [p.stem for p in paths])
