"""Progressive resizing: the first share of a run on batches scaled down by a factor of their
side (whole-image context at scale^2 of the cost per sample), then the rest at full size."""

from __future__ import annotations

from fractions import Fraction
from math import gcd

import torch

from edgeseg.errors import ConfigError


def reduced_size(x: torch.Tensor, y: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch at ``scale`` of its side: the image area-averaged (at 0.5, each 2x2 block's mean),
    the mask sampled centre to centre as ``cv2.INTER_NEAREST_EXACT`` does (a mask has no averages)."""
    height, width = x.shape[-2:]
    size = (round(height * scale), round(width * scale))
    small_x = torch.nn.functional.interpolate(x, size=size, mode="area")
    rows, cols = (_centres(n, full, y.device) for n, full in zip(size, (height, width), strict=True))
    return small_x, y[:, rows][:, :, cols]


def _centres(n: int, full: int, device: torch.device) -> torch.Tensor:
    """The source index whose pixel holds the centre of each of ``n`` pixels spread over ``full``."""
    return ((torch.arange(n, dtype=torch.float64, device=device) + 0.5) * (full / n)).long().clamp_(max=full - 1)


def side_multiple(stride: int, scale: float | None) -> int:
    """What every side must be a multiple of so that it, and ``scale`` of it, are multiples of
    ``stride`` (None: no reduced phase)."""
    if scale is None:
        return stride
    fraction = Fraction(scale).limit_denominator(64)
    return stride * fraction.denominator // gcd(fraction.numerator, stride)


def check_reduced_side(side: int, stride: int, scale: float, arch: str) -> None:
    """Refuse a side whose reduced size the architecture cannot take."""
    reduced = side * scale
    if abs(reduced - round(reduced)) > 1e-6 or round(reduced) % stride:
        multiple = side_multiple(stride, scale)
        raise ConfigError(f"{scale:g} of {side} px is not a multiple of {arch}'s stride {stride}",
                          fix=f"set reduced_size_share: 0, or a size that is a multiple of {multiple}")
