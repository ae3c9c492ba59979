"""Progressive resizing: the first share of a run on batches at a fraction of the side
(whole-image context at scale^2 of the cost per sample), then the rest at full size. The batch
maker warps each view of a photo straight to the reduced size (``TrainBatches.batch``)."""

from __future__ import annotations


def reduced_shape(height: int, width: int, scale: float, stride: int) -> tuple[int, int]:
    """Each side times ``scale``, rounded to the nearest multiple of the architecture's stride (at
    least one stride): 256 at 0.75 is 192, 224 at 0.75 is 160 (168 is not a multiple of 16)."""
    def reduced(side: int) -> int:
        return max(stride, stride * round(side * scale / stride))
    return reduced(height), reduced(width)
