"""Augmentations applied to image and mask alike (OpenCV and numpy, no torch).

All geometry (scaled crop, rotation, flips) is folded into one affine map and applied with a
single ``warpAffine``: linear for the image, nearest for the mask, so labels never blend. The
crop is stretched to the model's input exactly as the runtime stretches a whole frame,
so at scale 1 and no rotation a training sample is what the camera would show the model.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Annotated

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Strict

from edgeseg.data.classes import IGNORE_ID
from edgeseg.data.frames import resize_pair

# a pair may come from YAML as a list
Pair = Annotated[tuple[float, float], Strict(False)]


class AugmentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    scale: Pair = (0.5, 1.0)  # crop area as a fraction of the image
    defect_centred: float = 0.5  # share of crops centred on a defect pixel, where the image has one
    aspect: Pair = (0.75, 1.333)
    rotate_degrees: float = 20.0
    rotate_90: bool = True  # also turn by a random multiple of 90 degrees
    hflip: float = 0.5
    vflip: float = 0.5
    brightness: float = 0.15
    contrast: float = 0.2
    gamma: float = 0.2
    saturation: float = 0.2  # colour images only
    hue_degrees: float = 6.0  # colour images only
    noise_std: float = 3.0  # Gaussian sensor noise, in grey levels


def defect_pixels(mask: np.ndarray, limit: int = 512, seed: int = 0) -> np.ndarray:
    """Up to ``limit`` (x, y) coordinates of defect pixels (class > 0, not ignored), for crops
    centred on defects."""
    ys, xs = np.nonzero((mask > 0) & (mask != IGNORE_ID))
    if len(xs) > limit:
        keep = np.random.default_rng(seed).choice(len(xs), limit, replace=False)
        xs, ys = xs[keep], ys[keep]
    return np.stack([xs, ys], 1).astype(np.float32)


def _geometry(h: int, w: int, size: tuple[int, int], cfg: AugmentConfig, rng: np.random.Generator,
              focus: np.ndarray | None = None, view: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """2x3 map from output pixel (``size``: height, width) to source pixel. ``view``: the crop's
    width and height as fractions of the image's before scale jitter (1: the whole image; crop
    over input size for patch training at the model's own scale). With ``focus`` (defect pixel
    coordinates), the crop is centred near one. A non-square output is not turned by 90 degrees
    (the camera's frame is not)."""
    out_h, out_w = size
    area = rng.uniform(*cfg.scale)
    aspect = math.exp(rng.uniform(math.log(cfg.aspect[0]), math.log(cfg.aspect[1])))
    cw = min(1.0, math.sqrt(area * aspect) * view[0]) * w
    ch = min(1.0, math.sqrt(area / aspect) * view[1]) * h
    if focus is not None and len(focus) and rng.random() < cfg.defect_centred:
        px, py = focus[rng.integers(len(focus))]
        # the defect lands anywhere in the middle half of the crop, the crop stays inside the image
        cx = float(np.clip(px + rng.uniform(-cw / 4, cw / 4), cw / 2, w - cw / 2))
        cy = float(np.clip(py + rng.uniform(-ch / 4, ch / 4), ch / 2, h - ch / 2))
    else:
        cx = rng.uniform(cw / 2, w - cw / 2)
        cy = rng.uniform(ch / 2, h - ch / 2)
    theta = math.radians(rng.uniform(-cfg.rotate_degrees, cfg.rotate_degrees))
    if cfg.rotate_90 and out_h == out_w:
        theta += rng.integers(4) * math.pi / 2
    fx = -1.0 if rng.random() < cfg.hflip else 1.0
    fy = -1.0 if rng.random() < cfg.vflip else 1.0
    # Rotate in the stretched (model's) frame, then scale to the crop: source = c + D R F (p - s/2)
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    linear = np.diag([cw / out_w, ch / out_h]) @ rot @ np.diag([fx, fy])
    # pixel centres, as cv2.resize maps them: source index = c - 0.5 + L (p + 0.5 - s/2)
    offset = np.array([cx, cy]) - 0.5 + linear @ np.array([0.5 - out_w / 2, 0.5 - out_h / 2])
    return np.hstack([linear, offset[:, None]])


def _photometric(image: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    gamma = math.exp(rng.uniform(-cfg.gamma, cfg.gamma))
    contrast = 1.0 + rng.uniform(-cfg.contrast, cfg.contrast)
    brightness = rng.uniform(-cfg.brightness, cfg.brightness)
    x = np.arange(256, dtype=np.float32) / 255.0
    lut = np.clip(((x ** gamma) - 0.5) * contrast + 0.5 + brightness, 0, 1)
    image = cv2.LUT(image, (lut * 255 + 0.5).astype(np.uint8))
    if image.ndim == 3 and (cfg.saturation or cfg.hue_degrees):
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
        hue_shift = rng.uniform(-cfg.hue_degrees, cfg.hue_degrees) / 2  # OpenCV hue runs 0..179
        hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + int(round(hue_shift))) % 180).astype(np.uint8)
        sat = 1.0 + rng.uniform(-cfg.saturation, cfg.saturation)
        hsv[..., 1] = np.clip(hsv[..., 1] * sat, 0, 255).astype(np.uint8)
        image = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    if cfg.noise_std > 0:
        image = _with_noise(image, rng.uniform(0, cfg.noise_std), rng)
    return image


# the standard normal at the middle of each of 256 equal-probability bins (standard deviation
# 0.997, tails cut at 2.89)
_NORMAL_BY_BYTE = np.array([NormalDist().inv_cdf((k + 0.5) / 256) for k in range(256)], np.float32)


def _with_noise(image: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian sensor noise, rounded to the nearest grey level (truncating would darken every
    image by half a level). Each pixel draws one random byte, mapped to a normal quantile: far
    cheaper than a normal draw per pixel, the largest cost of making a batch before."""
    draws = np.frombuffer(rng.bytes(image.size), np.uint8).reshape(image.shape)
    noisy = cv2.LUT(draws, _NORMAL_BY_BYTE * np.float32(std))
    noisy += image
    noisy += 0.5
    np.clip(noisy, 0, 255, out=noisy)
    return noisy.astype(np.uint8)


def augment_pair(image: np.ndarray, mask: np.ndarray, size: int | tuple[int, int], cfg: AugmentConfig,
                 rng: np.random.Generator, focus: np.ndarray | None = None,
                 view: float | tuple[float, float] = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A random training view of (image, mask) at ``size`` (a side, or height and width); mask
    ids are never interpolated. ``focus``: defect pixel coordinates (``defect_pixels``) for
    defect-centred crops; ``view``: see ``_geometry`` (one number: both sides)."""
    out = (size, size) if isinstance(size, int) else size
    views = (view, view) if isinstance(view, (int, float)) else view
    matrix = _geometry(image.shape[0], image.shape[1], out, cfg, rng, focus, views)
    flags = cv2.WARP_INVERSE_MAP
    out_image = cv2.warpAffine(image, matrix, (out[1], out[0]), flags=flags | cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT_101)
    out_mask = cv2.warpAffine(mask, matrix, (out[1], out[0]), flags=flags | cv2.INTER_NEAREST,
                              borderMode=cv2.BORDER_REFLECT_101)
    return _photometric(out_image, cfg, rng), out_mask


__all__ = ["AugmentConfig", "augment_pair", "defect_pixels", "resize_pair"]
