"""A MobileNetV3-style encoder (inverted residuals, squeeze-excite, hard-swish) with the
LR-ASPP head of "Searching for MobileNetV3" (Howard et al., 2019).

The head predicts at 1/8 resolution from a 1/16 context branch and a 1/8 detail branch, then
upsamples bilinearly: the lightest model here, with coarser edges than the U-Net. With
``fine_detail`` a third linear classifier on the 1/4 features refines the sum at 1/4 resolution,
for thin cracks and small pits (a 1x1 convolution: 17 parameters per class); with ``stem_detail``
a fourth on the stem's 1/2 features refines it again at 1/2 resolution, where a mask scaled up to
a wide photo's own size shows each output cell's edge (17 parameters per class as well).

Three options make the 1/16 stage, which holds about half of a training step's time on a CPU,
cheaper: ``kernel`` for its depthwise convolutions (3 instead of MobileNetV3's 5),
``last_stage_width`` for the expansion of its last three blocks, and ``squeeze_excite: false``
(no gate in any block; all but the first block's are in that stage). docs/measurements/training.md
has the step times and what they did to accuracy.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from edgeseg.errors import ConfigError
from edgeseg.models.layers import ConvBNAct, share_class_prior


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        hidden = max(8, channels // 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
                                nn.Conv2d(hidden, channels, 1), nn.Hardsigmoid(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(self.pool(x))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, expand: int, cout: int, kernel: int, stride: int, se: bool, act: type[nn.Module]):
        super().__init__()
        layers: list[nn.Module] = []
        if expand != cin:
            layers.append(ConvBNAct(cin, expand, 1, act=act))
        layers.append(ConvBNAct(expand, expand, kernel, stride, groups=expand, act=act))
        if se:
            layers.append(SqueezeExcite(expand))
        layers.append(ConvBNAct(expand, cout, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


# (kernel, expand, out, squeeze-excite, activation, stride): MobileNetV3-Small, last stage
# kept at stride 16 as the LR-ASPP paper does for segmentation.
_SMALL = [
    (3, 16, 16, True, nn.ReLU, 2),
    (3, 72, 24, False, nn.ReLU, 2),
    (3, 88, 24, False, nn.ReLU, 1),
    (5, 96, 40, True, nn.Hardswish, 2),
    (5, 240, 40, True, nn.Hardswish, 1),
    (5, 240, 40, True, nn.Hardswish, 1),
    (5, 120, 48, True, nn.Hardswish, 1),
    (5, 144, 48, True, nn.Hardswish, 1),
    (5, 288, 96, True, nn.Hardswish, 1),
    (5, 576, 96, True, nn.Hardswish, 1),
    (5, 576, 96, True, nn.Hardswish, 1),
]
_DETAIL_INDEX = 2  # output of this block is at stride 8
_FINE_INDEX = 0  # and of this one at stride 4
_LAST_STAGE = range(8, 11)  # the blocks that expand to 288 and 576 channels


def _stage_table(kernel: int, last_stage_width: float, squeeze_excite: bool) -> list[tuple]:
    """The block table with the 1/16 stage's options applied (defaults: MobileNetV3-Small)."""
    if kernel not in (3, 5):
        raise ConfigError(f"mobile-lraspp's kernel must be 3 or 5, not {kernel}", fix="set arch_kwargs.kernel: 3 or 5")
    if not 0 < last_stage_width <= 1:
        raise ConfigError(f"mobile-lraspp's last_stage_width must be above 0 and at most 1, not {last_stage_width}",
                          fix="set arch_kwargs.last_stage_width to a share such as 0.67")
    table = []
    for i, (k, expand, cout, se, act, stride) in enumerate(_SMALL):
        if i > _DETAIL_INDEX:
            k = kernel
        if i in _LAST_STAGE:
            expand = max(cout, 8 * round(expand * last_stage_width / 8))
        table.append((k, expand, cout, se and squeeze_excite, act, stride))
    return table


class MobileLRASPP(nn.Module):
    STRIDE = 16

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.1, head_channels: int = 128,
                 fine_detail: bool = False, kernel: int = 5, last_stage_width: float = 1.0,
                 squeeze_excite: bool = True, stem_detail: bool = False):
        super().__init__()
        self.stem = ConvBNAct(in_channels, 16, 3, 2, act=nn.Hardswish)
        blocks, cin = [], 16
        for k, expand, cout, se, act, stride in _stage_table(kernel, last_stage_width, squeeze_excite):
            blocks.append(InvertedResidual(cin, expand, cout, k, stride, se, act))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        detail_channels = _SMALL[_DETAIL_INDEX][2]
        self.context = ConvBNAct(cin, head_channels, 1)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, head_channels, 1), nn.Sigmoid())
        self.dropout = nn.Dropout2d(dropout)
        self.classify_context = nn.Conv2d(head_channels, num_classes, 1)
        self.classify_detail = nn.Conv2d(detail_channels, num_classes, 1)
        self.classify_fine = nn.Conv2d(_SMALL[_FINE_INDEX][2], num_classes, 1) if fine_detail else None
        self.classify_stem = nn.Conv2d(16, num_classes, 1) if stem_detail else None

    def _classifiers(self) -> list[nn.Conv2d]:
        return [c for c in (self.classify_context, self.classify_detail, self.classify_fine, self.classify_stem)
                if c is not None]

    def set_class_prior(self, log_prior: torch.Tensor) -> None:
        """Start from the class frequencies; the classifiers are summed, so each takes its share."""
        share_class_prior(self._classifiers(), log_prior)

    def shift_class_scores(self, offsets: torch.Tensor) -> None:
        """Add a fixed offset to each class's score (a calibration folded into the bias); the
        upsampling after the sum is linear, so the detail classifier's bias carries it."""
        with torch.no_grad():
            self.classify_detail.bias.add_(offsets.to(self.classify_detail.bias))  # its dtype and device

    def forward(self, x: torch.Tensor, output_size: tuple[int, int] | None = None) -> torch.Tensor:
        """Class scores at the input's size, or at ``output_size`` (training's loss at a lower
        resolution)."""
        size = output_size or x.shape[-2:]
        x = stem = self.stem(x)
        detail = fine = x
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == _DETAIL_INDEX:
                detail = x
            elif i == _FINE_INDEX:
                fine = x
        y = self.context(x) * self.gate(x)
        y = F.interpolate(y, size=detail.shape[-2:], mode="bilinear", align_corners=False)
        y = self.classify_context(self.dropout(y)) + self.classify_detail(detail)
        if self.classify_fine is not None:
            y = F.interpolate(y, size=fine.shape[-2:], mode="bilinear", align_corners=False) + self.classify_fine(fine)
        if self.classify_stem is not None:
            y = F.interpolate(y, size=stem.shape[-2:], mode="bilinear", align_corners=False) + self.classify_stem(stem)
        return F.interpolate(y, size=size, mode="bilinear", align_corners=False)
