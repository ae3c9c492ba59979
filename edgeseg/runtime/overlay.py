"""The overlay a person looks at: class colours blended over the frame at ``alpha``, a legend of
the defect classes and a banner with the verdict. Drawn into buffers allocated once."""

from __future__ import annotations

import cv2
import numpy as np

from edgeseg.runtime.per_shape import PerShape
from edgeseg.runtime.rules import Verdict

PASS_BGR, FAIL_BGR = (60, 160, 40), (40, 40, 210)


class OverlayRenderer:
    def __init__(self, frame_shape: tuple[int, ...], class_names: list[str], class_colors: list[tuple[int, int, int]],
                 alpha: float = 0.5, source_order: str = "bgr"):
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], not {alpha}")
        height, width = frame_shape[:2]
        self.alpha = alpha
        self.class_names = class_names
        self.colors_bgr = [tuple(int(v) for v in reversed(rgb)) for rgb in class_colors]
        self.lut = np.zeros((256, 3), np.uint8)
        self.lut[:len(class_colors)] = np.array(self.colors_bgr, np.uint8).reshape(-1, 3)
        self.image = np.zeros((height, width, 3), np.uint8)
        self._colored = np.zeros_like(self.image)
        self._blend = np.zeros_like(self.image)
        self._to_bgr = (cv2.COLOR_GRAY2BGR if len(frame_shape) == 2 else
                        cv2.COLOR_RGB2BGR if source_order == "rgb" else None)
        self.scale = max(0.5, width / 1000)
        self.thickness = max(1, round(self.scale * 2))
        self.line = int(28 * self.scale) + 6
        self.index = -1  # the frame last drawn, so several sinks share one drawing

    def render(self, frame: np.ndarray, mask: np.ndarray, verdict: Verdict, index: int) -> np.ndarray:
        if index == self.index:
            return self.image
        if self._to_bgr is None:
            np.copyto(self.image, frame)
        else:
            cv2.cvtColor(frame, self._to_bgr, dst=self.image)
        if cv2.countNonZero(mask):
            np.take(self.lut, mask, axis=0, out=self._colored)
            cv2.addWeighted(self.image, 1 - self.alpha, self._colored, self.alpha, 0, dst=self._blend)
            cv2.copyTo(self._blend, mask, self.image)
        self._banner(verdict, index)
        self._legend()
        self.index = index
        return self.image

    def _text(self, text: str, origin: tuple[int, int], color=(255, 255, 255)) -> None:
        # a shadow one pixel down and right keeps the text readable on any surface (a thicker
        # stroke would be wider too: Hershey glyphs advance with their thickness)
        x, y = origin
        for at, ink in (((x + 1, y + 1), (0, 0, 0)), ((x, y), color)):
            cv2.putText(self.image, text, at, cv2.FONT_HERSHEY_SIMPLEX, self.scale * 0.8, ink, self.thickness,
                        cv2.LINE_AA)

    def _banner(self, verdict: Verdict, index: int) -> None:
        color = PASS_BGR if verdict.passed else FAIL_BGR
        cv2.rectangle(self.image, (0, 0), (self.image.shape[1], self.line), color, cv2.FILLED)
        label = "PASS" if verdict.passed else "FAIL  " + "; ".join(verdict.reasons)[:90]
        self._text(f"#{index}  {label}", (8, self.line - 8))

    def _legend(self) -> None:
        y = self.image.shape[0] - 8
        for name, color in reversed(list(zip(self.class_names[1:], self.colors_bgr[1:], strict=True))):
            cv2.rectangle(self.image, (8, y - self.line + 10), (8 + self.line - 10, y), color, cv2.FILLED)
            self._text(name, (8 + self.line, y - 4))
            y -= self.line


class OverlayRenderers:
    """Overlays for frames of any size: one renderer per frame shape, made when a shape first
    comes and kept for the last few, all sharing the class table and opacity."""

    def __init__(self, class_names: list[str], class_colors: list[tuple[int, int, int]], alpha: float = 0.5,
                 source_order: str = "bgr"):
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], not {alpha}")
        self._renderers = PerShape(lambda shape: OverlayRenderer(shape, class_names, class_colors, alpha,
                                                                 source_order))

    def render(self, frame: np.ndarray, mask: np.ndarray, verdict: Verdict, index: int) -> np.ndarray:
        return self._renderers(frame.shape).render(frame, mask, verdict, index)
