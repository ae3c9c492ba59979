"""Progressive resizing: the first share of a run on batches scaled down by a factor of their
side (whole-image context at scale^2 of the cost per sample), then the rest at full size."""

from __future__ import annotations

import torch


def reduced_shape(height: int, width: int, scale: float, stride: int) -> tuple[int, int]:
    """Each side times ``scale``, rounded to the nearest multiple of the architecture's stride (at
    least one stride): 256 at 0.75 is 192, 224 at 0.75 is 160 (168 is not a multiple of 16)."""
    def reduced(side: int) -> int:
        return max(stride, stride * round(side * scale / stride))
    return reduced(height), reduced(width)


def reduced_size(x: torch.Tensor, y: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch at (height, width) ``size``: the image area-averaged (at half the side, each 2x2
    block's mean), the mask sampled centre to centre as ``cv2.INTER_NEAREST_EXACT`` does (a mask
    has no averages)."""
    small_x = torch.nn.functional.interpolate(x, size=size, mode="area")
    rows, cols = (_centres(n, full, y.device) for n, full in zip(size, x.shape[-2:], strict=True))
    return small_x, y[:, rows][:, :, cols]


def _centres(n: int, full: int, device: torch.device) -> torch.Tensor:
    """The source index whose pixel holds the centre of each of ``n`` pixels spread over ``full``
    (torch's ``nearest-exact`` picks the same, but takes no int64 masks, which training's are)."""
    return ((torch.arange(n, dtype=torch.float64, device=device) + 0.5) * (full / n)).long().clamp_(max=full - 1)
