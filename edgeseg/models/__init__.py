"""Edge segmentation architectures, written here (no torchvision). Build side: imports torch.

A new architecture is one new module and one line in ``ARCHITECTURES``. It takes
``in_channels``, ``num_classes`` and ``dropout``, returns per-pixel logits at input size, and
has ``set_class_prior(log_prior)`` to start its classifier from the class balance.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from edgeseg.errors import ConfigError
from edgeseg.models.mobile_lraspp import MobileLRASPP
from edgeseg.models.unet import CompactUNet, LiteUNet


@dataclass(frozen=True)
class Architecture:
    name: str
    build: Callable[..., nn.Module]
    stride: int  # input height and width must be multiples of this
    summary: str

    @property
    def options(self) -> list[str]:
        """What a config's arch_kwargs may set: the builder's own keyword arguments."""
        return [p for p in inspect.signature(self.build).parameters
                if p not in ("self", "in_channels", "num_classes", "dropout")]

    def check_options(self, kwargs: dict) -> None:
        unknown = sorted(set(kwargs) - set(self.options))
        if unknown:
            raise ConfigError(f"{self.name} has no option {', '.join(unknown)} (arch_kwargs)",
                              fix=f"its options are: {', '.join(self.options)}")


ARCHITECTURES: dict[str, Architecture] = {
    "unet": Architecture("unet", CompactUNet, CompactUNet.STRIDE,
                         "compact U-Net: full-resolution skips keep defects of a few pixels"),
    "unet-lite": Architecture("unet-lite", LiteUNet, LiteUNet.STRIDE,
                              "the compact U-Net from a stride-2 stem: 3.6x faster to train on a CPU"),
    "mobile-lraspp": Architecture("mobile-lraspp", MobileLRASPP, MobileLRASPP.STRIDE,
                                  "MobileNetV3-style encoder with an LR-ASPP head: lightest, coarser edges"),
}


def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ConfigError(f"unknown architecture '{name}'",
                          fix=f"choose one of: {', '.join(ARCHITECTURES)}") from None


def build_model(name: str, in_channels: int, num_classes: int, dropout: float = 0.1, **kwargs) -> nn.Module:
    arch = get_architecture(name)
    arch.check_options(kwargs)
    return arch.build(in_channels=in_channels, num_classes=num_classes, dropout=dropout, **kwargs)
