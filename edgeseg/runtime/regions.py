"""Regions of a class mask: connected components per class with area, bounding box, centroid,
outline polygon and mean confidence (OpenCV, 8-connectivity)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np


@dataclass
class Region:
    class_id: int
    class_name: str
    area: int  # pixels
    bbox: tuple[int, int, int, int]  # x, y, width, height
    centroid: tuple[float, float]  # x, y
    polygon: list[list[int]]  # outer contour, [[x, y], ...]
    confidence: float | None  # mean confidence over the region's pixels

    def to_dict(self) -> dict:
        return asdict(self)


class RegionScratch:
    """Frame-size work buffers for the region search, allocated once per frame size."""

    def __init__(self, height: int, width: int):
        self.binary = np.empty((height, width), np.uint8)
        self.labels = np.empty((height, width), np.int32)
        self.histogram = np.empty((256, 1), np.float32)


def find_regions(mask: np.ndarray, class_names: list[str], confidence: np.ndarray | None = None,
                 min_area: int = 1, background: int = 0, scratch: RegionScratch | None = None,
                 scale: tuple[float, float] = (1.0, 1.0)) -> list[Region]:
    """Every connected region of every non-background class in an (H, W) uint8 mask. With
    ``scratch`` the work happens in its buffers (no per-frame allocation). ``scale`` (x, y) maps
    the mask's pixels to frame pixels: a model-size mask's regions are found where they are
    small and reported in the frame's coordinates (area, box, centroid and outline scaled)."""
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise ValueError(f"a region search takes an (H, W) uint8 mask, not {mask.shape} {mask.dtype}")
    scratch = scratch or RegionScratch(*mask.shape)
    regions = []
    histogram = cv2.calcHist([mask], [0], None, [256], [0, 256], hist=scratch.histogram)
    for class_id in range(len(class_names)):
        if class_id == background or histogram[class_id, 0] == 0:
            continue
        binary = cv2.compare(mask, class_id, cv2.CMP_EQ, dst=scratch.binary)
        count, labels, stats, centroids = cv2.connectedComponentsWithStats(
            binary, labels=scratch.labels, connectivity=8, ltype=cv2.CV_32S)
        sx, sy = scale
        for label in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[label])
            frame_area = round(area * sx * sy)
            if frame_area < min_area:
                continue
            component = (labels[y:y + h, x:x + w] == label).view(np.uint8)
            contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE,
                                           offset=(x, y))
            outline = max(contours, key=cv2.contourArea).reshape(-1, 2)
            if scale != (1.0, 1.0):  # each mask pixel is an sx-by-sy block of the frame: its centre
                outline = np.rint((outline + 0.5) * (sx, sy) - 0.5).astype(np.int64)
            mean_confidence = (float(confidence[y:y + h, x:x + w][component.view(bool)].mean())
                               if confidence is not None else None)
            cx, cy = centroids[label]
            regions.append(Region(int(class_id), class_names[class_id], frame_area,
                                  (int(x * sx), int(y * sy), round(w * sx), round(h * sy)),
                                  (float((cx + 0.5) * sx - 0.5), float((cy + 0.5) * sy - 0.5)), outline.tolist(),
                                  mean_confidence))
    return regions
