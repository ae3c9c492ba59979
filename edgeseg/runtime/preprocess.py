"""Frames into the engine's input buffers: resized straight into them (linear, as in training),
with a colour conversion only where the frame's channels or order differ from the model's, done
at model size after the resize. Every target view is made once, so a frame allocates nothing."""

from __future__ import annotations

import cv2
import numpy as np

from edgeseg.engines.base import Engine
from edgeseg.errors import ConfigError

# (frame order, model order) -> OpenCV conversion; frames are "gray", "bgr" or "rgb"
_CONVERSIONS = {("bgr", "gray"): cv2.COLOR_BGR2GRAY, ("rgb", "gray"): cv2.COLOR_RGB2GRAY,
                ("gray", "bgr"): cv2.COLOR_GRAY2BGR, ("gray", "rgb"): cv2.COLOR_GRAY2RGB,
                ("bgr", "rgb"): cv2.COLOR_BGR2RGB, ("rgb", "bgr"): cv2.COLOR_RGB2BGR}


def frame_order(frame_shape: tuple[int, ...], source_order: str) -> str:
    return "gray" if len(frame_shape) == 2 else source_order


def input_views(engine: Engine) -> list[np.ndarray]:
    """Each request's input as (H, W) for a mono model, (H, W, 3) for colour: views, made once."""
    return [buf[0, :, :, 0] if engine.spec.channels == 1 else buf[0] for buf in engine.inputs]


class Preprocessor:
    def __init__(self, engine: Engine, frame_shape: tuple[int, ...], source_order: str = "bgr",
                 interpolation: int = cv2.INTER_LINEAR):
        spec = engine.spec
        order = frame_order(frame_shape, source_order)
        model_order = "gray" if spec.channels == 1 else spec.color_order
        if order != model_order and (order, model_order) not in _CONVERSIONS:
            raise ConfigError(f"cannot feed {order} frames to a {model_order} model")
        self.conversion = _CONVERSIONS.get((order, model_order))
        self.size = (spec.width, spec.height)
        self.same_size = tuple(frame_shape[:2]) == (spec.height, spec.width)
        self.interpolation = interpolation
        self.targets = input_views(engine)
        self.scratch = (np.empty((spec.height, spec.width) + tuple(frame_shape[2:]), np.uint8)
                        if self.conversion is not None and not self.same_size else None)

    def __call__(self, frame: np.ndarray, request: int = 0) -> None:
        target = self.targets[request]
        if self.conversion is None:
            if self.same_size:
                np.copyto(target, frame)
            else:
                cv2.resize(frame, self.size, dst=target, interpolation=self.interpolation)
            return
        source = frame if self.same_size else cv2.resize(frame, self.size, dst=self.scratch,
                                                         interpolation=self.interpolation)
        cv2.cvtColor(source, self.conversion, dst=target)

    def tile(self, crop: np.ndarray, request: int) -> None:
        """A tile at native resolution: copied (or converted) into the request's input."""
        if self.conversion is None:
            np.copyto(self.targets[request], crop)
        else:
            cv2.cvtColor(crop, self.conversion, dst=self.targets[request])
