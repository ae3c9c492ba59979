"""Engine outputs into inspection results at frame size: the confidence threshold applied at
model size, the mask upscaled (nearest, centre to centre, so labels never blend) or stitched
from tiles into a preallocated frame-size buffer, then regions and a verdict. A frame with no
defect pixel skips the region search.

In resize mode the regions are found on the model-size mask and scaled to frame pixels: the
upscaled mask holds no finer detail, and the search costs 1/20 of one on a 1280x1024 mask.
In tile mode they are found on the stitched native-resolution mask."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgeseg.data.frames import MASK_RESIZE
from edgeseg.engines.base import Engine
from edgeseg.runtime.regions import Region, RegionScratch, find_regions
from edgeseg.runtime.rules import InspectionRules, Verdict
from edgeseg.runtime.tiles import TileGrid

_PASS = Verdict(True, [])


@dataclass
class Inspection:
    regions: list[Region]
    verdict: Verdict


class Postprocessor:
    def __init__(self, engine: Engine, frame_size: tuple[int, int], rules: InspectionRules, class_names: list[str],
                 tiles: TileGrid | None = None):
        height, width = frame_size
        self.engine, self.rules, self.class_names, self.tiles = engine, rules, class_names, tiles
        self.size = (width, height)
        self.mask = np.zeros(frame_size, np.uint8)  # the frame's class mask, reused every frame
        model_shape = (engine.spec.height, engine.spec.width)
        self.scale = (width / model_shape[1], height / model_shape[0])
        has_confidence = engine.spec.confidence_name is not None
        # tile mode stitches confidence at frame size; resize mode reads it at model size
        self.confidence = np.zeros(frame_size, np.float32) if has_confidence and tiles is not None else None
        self.scratch = RegionScratch(height, width) if tiles is not None else RegionScratch(*model_shape)
        self._request, self._upscaled = 0, False  # whose model-size mask the last resized() read
        self._unsure = [np.zeros(model_shape, bool) for _ in engine.masks]  # tiles stitch in parallel
        # per request, views made once: the model-size mask and confidence
        self._masks = [m[0] for m in engine.masks]
        self._confidences = [c[0] if c is not None else None for c in engine.confidences]

    def _threshold(self, request: int) -> None:
        """Pixels less sure than the threshold become background, at model size (cheap)."""
        threshold, confidence = self.rules.confidence_threshold, self._confidences[request]
        if threshold is not None and confidence is not None:
            np.less(confidence, threshold, out=self._unsure[request])
            np.copyto(self._masks[request], 0, where=self._unsure[request])

    def resized(self, request: int = 0) -> bool:
        """Resize mode: take the request's mask as the frame's. True if it has any defect pixel."""
        self._threshold(request)
        self._request, self._upscaled = request, False
        return cv2.countNonZero(self._masks[request]) > 0

    def frame_mask(self) -> np.ndarray:
        """The frame's class mask at frame size; in resize mode upscaled on first use per frame
        (a run that writes only JSON lines never needs it)."""
        if self.tiles is None and not self._upscaled:
            cv2.resize(self._masks[self._request], self.size, dst=self.mask, interpolation=MASK_RESIZE)
            self._upscaled = True
        return self.mask

    def stitch(self, request: int, tile_number: int) -> None:
        """Tile mode: the part of one tile's mask that the stitching rule gives it."""
        assert self.tiles is not None, "stitch is for tile mode"
        self._threshold(request)
        tile = self.tiles.tiles[tile_number]
        np.copyto(self.mask[tile.to], self._masks[request][tile.keep])
        confidence = self._confidences[request]
        if self.confidence is not None and confidence is not None:
            np.copyto(self.confidence[tile.to], confidence[tile.keep])

    def inspect(self, defects: bool = True) -> Inspection:
        """Regions of the frame's mask, in frame pixels, and the verdict on them."""
        if not defects:
            return Inspection([], _PASS)  # every rule sets a maximum, so no region passes
        if self.tiles is not None:
            regions = find_regions(self.mask, self.class_names, self.confidence, self.rules.min_region_area,
                                   scratch=self.scratch)
        else:
            regions = find_regions(self._masks[self._request], self.class_names, self._confidences[self._request],
                                   self.rules.min_region_area, scratch=self.scratch, scale=self.scale)
        return Inspection(regions, self.rules.judge(regions))
