"""Regions of a class mask: connected regions per class with area, bounding box, centroid,
outline polygon and mean confidence (OpenCV, 8-connectivity)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Region:
    class_id: int
    class_name: str
    area: int  # pixels
    bbox: tuple[int, int, int, int]  # x, y, width, height
    centroid: tuple[float, float]  # x, y
    contour: np.ndarray  # outer contour in mask pixels, (N, 1, 2) as OpenCV traced it
    confidence: float | None  # mean confidence over the region's pixels
    scale: tuple[float, float] = (1.0, 1.0)  # mask pixel -> frame pixels (x, y)

    @property
    def polygon(self) -> np.ndarray:
        """The outline in frame pixels, (N, 2) x, y: each mask pixel's block centre. Made when
        asked for (when a result is written), not for every region found."""
        outline = self.contour.reshape(-1, 2)
        if self.scale == (1.0, 1.0):
            return outline
        return np.rint((outline + 0.5) * self.scale - 0.5).astype(np.int64)

    def to_dict(self) -> dict:
        return {"class_id": self.class_id, "class_name": self.class_name, "area": self.area, "bbox": list(self.bbox),
                "centroid": list(self.centroid), "polygon": self.polygon.tolist(), "confidence": self.confidence}


class RegionScratch:
    """Work buffers for the region search, allocated once per mask size."""

    def __init__(self, height: int, width: int):
        self.binary = np.empty((height, width), np.uint8)
        self._component = np.empty(height * width, np.uint8)  # one region's box, reshaped per region

    def component(self, height: int, width: int) -> np.ndarray:
        """A zeroed (height, width) view of the scratch, contiguous as OpenCV wants it."""
        view = self._component[:height * width].reshape(height, width)
        view.fill(0)
        return view


def _is_hole(hierarchy: list, index: int) -> bool:
    """In OpenCV's contour tree a region's outline sits at even depth, a hole's at odd depth."""
    odd = False
    parent = hierarchy[index][3]
    while parent != -1:
        odd = not odd
        parent = hierarchy[parent][3]
    return odd


def _islands(hierarchy: list, outer: int) -> list[int]:
    """Outer contours of the regions inside the holes of region ``outer`` (its grandchildren in
    OpenCV's contour tree: region -> hole -> island)."""
    islands = []
    hole = hierarchy[outer][2]
    while hole != -1:
        island = hierarchy[hole][2]
        while island != -1:
            islands.append(island)
            island = hierarchy[island][0]
        hole = hierarchy[hole][0]
    return islands


def find_regions(mask: np.ndarray, class_names: list[str], confidence: np.ndarray | None = None,
                 min_area: int = 1, background: int = 0, scratch: RegionScratch | None = None,
                 scale: tuple[float, float] = (1.0, 1.0)) -> list[Region]:
    """Every connected region of every non-background class in an (H, W) uint8 mask. With
    ``scratch`` the mask-size work happens in its buffers (no per-frame allocation). ``scale``
    (x, y) maps the mask's pixels to frame pixels: a model-size mask's regions are found where
    they are small and reported in the frame's coordinates (area, box, centroid and outline).

    Per class present: one contour trace (OpenCV's contour tree, 8-connected regions), no
    labelling of the mask, which costs more than everything else when a model marks many
    specks. Each region is measured on its own box only: its outer contour filled, the regions
    inside its holes cut out again, and the result ANDed with the class's pixels, which is
    exactly the region's pixels (its holes drop out). All of it happens inside the box around
    every defect pixel, found in one pass over the mask (docs/decisions/0004-region-search-box.md)."""
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise ValueError(f"a region search takes an (H, W) uint8 mask, not {mask.shape} {mask.dtype}")
    scratch = scratch or RegionScratch(*mask.shape)
    regions: list[Region] = []
    x0, y0, w0, h0 = _defect_box(mask, background)
    if not w0:
        return regions
    area_of_interest = mask[y0:y0 + h0, x0:x0 + w0]
    for class_id in range(len(class_names)):
        if class_id == background:
            continue
        # the class's pixels inside the box, in box coordinates; contours come in mask coordinates
        binary = cv2.compare(area_of_interest, class_id, cv2.CMP_EQ,  # type: ignore[call-overload]
                             dst=scratch.binary[:h0, :w0])  # a scalar operand: OpenCV's stubs list arrays only
        if not cv2.countNonZero(binary):
            continue
        contours, hierarchy = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE, offset=(x0, y0))
        hierarchy = hierarchy[0].tolist()  # plain lists: walked link by link below
        for index in range(len(contours)):
            if _is_hole(hierarchy, index):
                continue
            region = _measure(_Outline(contours, hierarchy, index), binary, (x0, y0), scratch, confidence,
                              (class_id, class_names[class_id]), scale, min_area)
            if region is not None:
                regions.append(region)
    return regions


def _defect_box(mask: np.ndarray, background: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the box around every pixel that is not background (w is 0 if none)."""
    if background != 0:
        return 0, 0, mask.shape[1], mask.shape[0]
    x0, y0, w0, h0 = cv2.boundingRect(mask)  # background 0: boundingRect's non-zero pixels
    if w0 == h0 == 1 and mask.shape[1] > 1:  # OpenCV takes a 1x1 array for a scalar: one pixel wider
        x0, w0 = min(x0, mask.shape[1] - 2), 2
    return x0, y0, w0, h0


@dataclass
class _Outline:
    contours: Sequence[np.ndarray]
    hierarchy: list
    index: int


def _measure(outline: _Outline, binary: np.ndarray, origin: tuple[int, int], scratch: RegionScratch,
             confidence: np.ndarray | None, class_of: tuple[int, str], scale: tuple[float, float],
             min_area: int) -> Region | None:
    """One region from its outer contour: its pixels, area, box, centroid and mean confidence, in
    frame coordinates; None where it is smaller than ``min_area``."""
    sx, sy = scale
    x0, y0 = origin
    contour = outline.contours[outline.index]
    x, y, w, h = cv2.boundingRect(contour)
    if w * h * sx * sy < min_area:  # even a full box would be too small
        return None
    component = scratch.component(h, w)
    # one contour per call: OpenCV converts every contour it is handed, on every call
    cv2.drawContours(component, (contour,), 0, 1, cv2.FILLED, offset=(-x, -y))
    for island in _islands(outline.hierarchy, outline.index):
        cv2.drawContours(component, (outline.contours[island],), 0, 0, cv2.FILLED, offset=(-x, -y))
    cv2.bitwise_and(component, binary[y - y0:y - y0 + h, x - x0:x - x0 + w], dst=component)
    moments = cv2.moments(component, binaryImage=True)
    area = round(moments["m00"] * sx * sy)
    if area < min_area:
        return None
    cx, cy = x + moments["m10"] / moments["m00"], y + moments["m01"] / moments["m00"]
    mean_confidence = (float(cv2.mean(confidence[y:y + h, x:x + w], mask=component)[0])
                       if confidence is not None else None)
    return Region(class_of[0], class_of[1], area, (int(x * sx), int(y * sy), round(w * sx), round(h * sy)),
                  (float((cx + 0.5) * sx - 0.5), float((cy + 0.5) * sy - 0.5)), contour, mean_confidence, scale)
