"""A compact U-Net: four down and four up levels with full-resolution skip connections.

Thin channels (16 at full resolution by default) keep it at a few GFLOPs at 512 px while the
skips keep the boundaries of small defects. Upsampling is bilinear then a convolution: no
transposed convolutions, which export and quantize less cleanly.

``LiteUNet`` is the same network without the full-resolution level: a stride-2 stem, the same
four levels below it, and the logits upsampled 2x at the end. On a CPU its training steps are
several times faster, because thin convolutions at full resolution are bound by memory, not
arithmetic (docs/decisions/0006-unet-lite.md); the bottleneck sits at 1/32, so its receptive
field spans a whole 256 px image.

Two options make it learn faster per step, which is what 30 minutes on two cores allow:
``residual`` shortcuts around the convolution pairs, and ``coarse_classifier``, a second 1x1
classifier on the first decoder level whose upsampled logits are added to the output's (as the
LR-ASPP head sums its classifiers), a short path from the loss to the deep levels where the
large defects (broken edges, uneven patches) are recognised. Both are off by default, so that
checkpoints trained without them still load.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from edgeseg.models.layers import ConvBNAct, share_class_prior


class DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(ConvBNAct(cin, cout), ConvBNAct(cout, cout))


class ResidualDoubleConv(nn.Module):
    """The two convolutions with a shortcut around them (He et al., 2016): a little more per
    training step, and the loss falls faster from the first epoch (docs/decisions/0006)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(ConvBNAct(cin, cout), ConvBNAct(cout, cout, act=None))
        self.shortcut = nn.Identity() if cin == cout else ConvBNAct(cin, cout, kernel=1, act=None)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class Up(nn.Module):
    def __init__(self, cin: int, cskip: int, cout: int, block=DoubleConv):
        super().__init__()
        self.reduce = ConvBNAct(cin, cskip, kernel=1)
        self.fuse = block(2 * cskip, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(self.reduce(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([x, skip], dim=1))


class CompactUNet(nn.Module):
    STRIDE = 16
    STEM_STRIDE = 1

    def __init__(self, in_channels: int, num_classes: int, base: int = 16, dropout: float = 0.1,
                 residual: bool = False, coarse_classifier: bool = False):
        super().__init__()
        c = [base, base * 2, base * 4, base * 8, base * 16]
        block = ResidualDoubleConv if residual else DoubleConv
        self.stem = (DoubleConv(in_channels, c[0]) if self.STEM_STRIDE == 1 else
                     nn.Sequential(ConvBNAct(in_channels, c[0], stride=self.STEM_STRIDE), ConvBNAct(c[0], c[0])))
        self.downs = nn.ModuleList(nn.Sequential(nn.MaxPool2d(2), block(c[i], c[i + 1])) for i in range(4))
        self.dropout = nn.Dropout2d(dropout)
        self.ups = nn.ModuleList(Up(c[i + 1], c[i], c[i], block) for i in reversed(range(4)))
        self.head = nn.Conv2d(c[0], num_classes, 1)
        self.coarse_head = nn.Conv2d(c[3], num_classes, 1) if coarse_classifier else None

    def set_class_prior(self, log_prior: torch.Tensor) -> None:
        """Start from the class frequencies (Lin et al., focal loss, 2017): the model begins at
        'all background' instead of spending its first thousand steps learning it."""
        share_class_prior([c for c in (self.head, self.coarse_head) if c is not None], log_prior)

    def shift_class_scores(self, offsets: torch.Tensor) -> None:
        """Add a fixed offset to each class's score (a calibration folded into the bias)."""
        with torch.no_grad():
            self.head.bias.add_(offsets.to(self.head.bias))  # its dtype and device

    def forward(self, x: torch.Tensor, output_size: tuple[int, int] | None = None) -> torch.Tensor:
        """Class scores at the input's size, or at ``output_size`` (training's loss at a lower
        resolution; bilinear either way)."""
        size = output_size or x.shape[-2:]
        skips = [self.stem(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = self.dropout(skips.pop())
        coarse = None
        for up in self.ups:
            x = up(x, skips.pop())
            if coarse is None and self.coarse_head is not None:
                coarse = self.coarse_head(x)
        x = self.head(x)
        if coarse is not None:
            x = x + F.interpolate(coarse, size=x.shape[-2:], mode="bilinear", align_corners=False)
        if self.STEM_STRIDE == 1 and output_size is None:
            return x
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class LiteUNet(CompactUNet):
    STRIDE = 32
    STEM_STRIDE = 2
