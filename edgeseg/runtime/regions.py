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


def find_regions(mask: np.ndarray, class_names: list[str], confidence: np.ndarray | None = None,
                 min_area: int = 1, background: int = 0) -> list[Region]:
    """Every connected region of every non-background class in an (H, W) uint8 mask."""
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise ValueError(f"a region search takes an (H, W) uint8 mask, not {mask.shape} {mask.dtype}")
    regions = []
    present = np.flatnonzero(np.bincount(mask.ravel(), minlength=len(class_names)))
    for class_id in present:
        if class_id == background or class_id >= len(class_names):
            continue
        binary = (mask == class_id).astype(np.uint8)
        count, labels, stats, centroids = cv2.connectedComponentsWithStats(binary, connectivity=8)
        for label in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[label])
            if area < min_area:
                continue
            component = (labels[y:y + h, x:x + w] == label).astype(np.uint8)
            contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE,
                                           offset=(x, y))
            outline = max(contours, key=cv2.contourArea).reshape(-1, 2).tolist()
            mean_confidence = (float(confidence[y:y + h, x:x + w][component.astype(bool)].mean())
                               if confidence is not None else None)
            regions.append(Region(int(class_id), class_names[class_id], area, (x, y, w, h),
                                  (float(centroids[label][0]), float(centroids[label][1])), outline,
                                  mean_confidence))
    return regions
