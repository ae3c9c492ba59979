"""Building blocks shared by the architectures."""

from __future__ import annotations

import torch
from torch import nn


class ConvBNAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1,
                 act: type[nn.Module] | None = nn.ReLU):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            act(inplace=True) if act is not None else nn.Identity(),
        )


def share_class_prior(classifiers: list[nn.Conv2d], log_prior: torch.Tensor) -> None:
    """Start summed classifiers from the class frequencies: their logits add up, so each bias
    takes an equal share of the log prior."""
    with torch.no_grad():
        for classifier in classifiers:
            classifier.bias.copy_(log_prior / len(classifiers))
