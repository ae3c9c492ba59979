"""Regions of a class mask: connected components per class with area, bounding box, centroid,
outline polygon and mean confidence (OpenCV, 8-connectivity)."""

from __future__ import annotations

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
        self.labels = np.empty((height, width), np.int32)


def find_regions(mask: np.ndarray, class_names: list[str], confidence: np.ndarray | None = None,
                 min_area: int = 1, background: int = 0, scratch: RegionScratch | None = None,
                 scale: tuple[float, float] = (1.0, 1.0)) -> list[Region]:
    """Every connected region of every non-background class in an (H, W) uint8 mask. With
    ``scratch`` the mask-size work happens in its buffers (no per-frame allocation). ``scale``
    (x, y) maps the mask's pixels to frame pixels: a model-size mask's regions are found where
    they are small and reported in the frame's coordinates (area, box, centroid and outline).

    Per class: one labelling (without statistics, which cost OpenCV 6x more) and one contour
    trace; each outer contour is one 8-connected component, measured on its own box only."""
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise ValueError(f"a region search takes an (H, W) uint8 mask, not {mask.shape} {mask.dtype}")
    scratch = scratch or RegionScratch(*mask.shape)
    sx, sy = scale
    regions = []
    for class_id in range(len(class_names)):
        if class_id == background:
            continue
        binary = cv2.compare(mask, class_id, cv2.CMP_EQ, dst=scratch.binary)
        rx, ry, rw, rh = cv2.boundingRect(binary)  # where the class is: label and trace only there
        if not rw:
            continue
        labels = scratch.labels.reshape(-1)[:rw * rh].reshape(rh, rw)  # contiguous, as OpenCV wants it
        cv2.connectedComponents(binary[ry:ry + rh, rx:rx + rw], labels=labels, connectivity=8, ltype=cv2.CV_32S)
        contours, hierarchy = cv2.findContours(binary[ry:ry + rh, rx:rx + rw], cv2.RETR_CCOMP,
                                               cv2.CHAIN_APPROX_SIMPLE)
        for contour, links in zip(contours, hierarchy[0]):
            if links[3] != -1:  # the boundary of a hole, not of a region
                continue
            lx, ly, w, h = cv2.boundingRect(contour)  # in the class's box
            if w * h * sx * sy < min_area:  # even a full box would be too small
                continue
            first_x, first_y = contour[0, 0]
            component = (labels[ly:ly + h, lx:lx + w] == labels[first_y, first_x]).view(np.uint8)
            x, y = lx + rx, ly + ry
            contour += (rx, ry)
            moments = cv2.moments(component, binaryImage=True)
            area = round(moments["m00"] * sx * sy)
            if area < min_area:
                continue
            cx, cy = x + moments["m10"] / moments["m00"], y + moments["m01"] / moments["m00"]
            mean_confidence = (float(cv2.mean(confidence[y:y + h, x:x + w], mask=component)[0])
                               if confidence is not None else None)
            regions.append(Region(class_id, class_names[class_id], area,
                                  (int(x * sx), int(y * sy), round(w * sx), round(h * sy)),
                                  (float((cx + 0.5) * sx - 0.5), float((cy + 0.5) * sy - 0.5)), contour,
                                  mean_confidence, scale))
    return regions
