"""The Python API: open a bundle, feed it frames, get mask, confidence, regions and verdict.

``Inspector`` is for a loop of one's own (frames from anywhere, any size); ``InspectionSession``
(re-exported from ``edgeseg``) streams a source through the same loop as ``edgeseg run``. Both
are context managers. docs/api.md has the examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgeseg.engines import Bundle, open_engine
from edgeseg.errors import ConfigError
from edgeseg.runtime.per_shape import PerShape
from edgeseg.runtime.postprocess import Postprocessor
from edgeseg.runtime.preprocess import Preprocessor
from edgeseg.runtime.regions import Region
from edgeseg.runtime.rules import InspectionRules, Verdict
from edgeseg.runtime.sources.base import BadFrame, as_frame


@dataclass
class InspectionResult:
    """One frame's result; its arrays are the caller's own (copies, not the engine's buffers)."""

    mask: np.ndarray  # (H, W) uint8 class id per pixel, at the frame's size
    confidence: np.ndarray | None  # (H, W) float32 top-class probability at the frame's size, if the model gives it
    regions: list[Region]  # in frame pixels
    verdict: Verdict

    @property
    def passed(self) -> bool:
        return self.verdict.passed


class Inspector:
    """A bundle ready to inspect frames one at a time::

        with edgeseg.Inspector("parts-int8", rules="rules.yaml") as inspector:
            result = inspector.inspect(frame)       # uint8 mono (H, W) or BGR (H, W, 3), any size
            print(result.verdict, len(result.regions))
    """

    def __init__(self, bundle: str | Path, rules: str | Path | dict | InspectionRules | None = None,
                 color_order: str = "bgr", **engine_options):
        self.bundle = Bundle.read(bundle)
        self.class_names = [c["name"] for c in self.bundle.manifest["classes"]]
        self.rules = _rules(rules, self.class_names)
        self.color_order = color_order  # of 3-channel frames: "bgr" (OpenCV's) or "rgb"
        self.bit_depth = self.bundle.manifest["input"].get("bit_depth", 16)  # 16-bit frames' full scale
        self.engine = open_engine(self.bundle, **engine_options)
        self._processors = PerShape(self._make_processors)  # buffers per frame size, made once

    def inspect(self, frame: np.ndarray) -> InspectionResult:
        """Resize the frame into the engine, infer, and judge the mask by the rules."""
        try:
            frame = as_frame(np.asarray(frame), None, self.bit_depth)
        except BadFrame as e:
            raise ConfigError(f"cannot inspect this frame: {e}", fix="give a uint8 mono or colour image") from None
        pre, post = self._processors(frame.shape)
        pre(frame)
        self.engine.infer()
        inspection = post.inspect(post.resized())
        return InspectionResult(post.frame_mask().copy(), self._confidence(post), inspection.regions,
                                inspection.verdict)

    def _make_processors(self, shape: tuple[int, ...]) -> tuple[Preprocessor, Postprocessor]:
        return (Preprocessor(self.engine, shape, self.color_order),
                Postprocessor(self.engine, (shape[0], shape[1]), self.rules, self.class_names))

    def _confidence(self, post: Postprocessor) -> np.ndarray | None:
        model_size = self.engine.confidence
        if model_size is None:
            return None
        return cv2.resize(model_size[0], post.size, interpolation=cv2.INTER_LINEAR)

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> Inspector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _rules(rules: str | Path | dict | InspectionRules | None, class_names: list[str]) -> InspectionRules:
    if rules is None:
        return InspectionRules()
    if isinstance(rules, InspectionRules):
        return rules
    if isinstance(rules, dict):
        return InspectionRules.from_dict(rules, class_names)
    return InspectionRules.from_yaml(rules, class_names)
