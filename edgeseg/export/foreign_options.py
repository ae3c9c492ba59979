"""What ``edgeseg import`` is told about a foreign graph, checked before onnx is imported (the CLI
builds its help from these)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgeseg.errors import ConfigError

LAYOUTS = ("nchw", "nhwc")
HEADS = ("softmax", "sigmoid", "argmax")
# value range and mean/std in the usual forms: x = (pixel * scale - mean) / std
NORMALIZATIONS = {
    "unit": (1 / 255, [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]),
    "imagenet": (1 / 255, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),  # torchvision, smp, timm
    "mmseg": (1.0, [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]),  # MMSegmentation's data preprocessor
    "raw": (1.0, [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]),
}


@dataclass
class ImportOptions:
    foreign: str
    output: str
    classes: str  # classes.csv: id,name,r,g,b
    layout: str = "nchw"  # the foreign graph's input layout
    output_layout: str | None = None  # of its logits; default: as its input
    channel_order: str = "rgb"  # what the foreign graph takes: rgb, bgr or gray
    input_order: str | None = None  # what the camera gives; default: channel_order
    normalization: str = "imagenet"
    mean: list[float] | None = None  # given, they replace the normalization's
    std: list[float] | None = None
    scale: float | None = None
    height: int | None = None  # required where the graph's input size is dynamic
    width: int | None = None
    head: str = "softmax"
    confidence: bool = True
    data: str | None = None  # data set whose val frames measure parity (default: random frames)
    parity_frames: int = 16

    @property
    def logits_layout(self) -> str:
        return self.output_layout or self.layout

    @property
    def frames_order(self) -> str:
        """The camera frames' channel order."""
        return self.input_order or self.channel_order

    @property
    def swaps_channels(self) -> bool:
        """Whether the wrapper reverses the channels (the camera's colour order is not the graph's)."""
        return self.frames_order != self.channel_order


@dataclass
class ImportResult:
    path: Path
    classes: int
    height: int
    width: int
    dynamic: bool
    logits_shape: list[int]
    pixel_agreement: float
    frames: int
    parity_source: str


def check_choices(opts: ImportOptions) -> None:
    for value, choices, flag in ((opts.layout, LAYOUTS, "--layout"), (opts.logits_layout, LAYOUTS, "--output-layout"),
                                 (opts.head, HEADS, "--head"),
                                 (opts.channel_order, ("rgb", "bgr", "gray"), "--channel-order"),
                                 (opts.frames_order, ("rgb", "bgr", "gray"), "--input-order")):
        if value not in choices:
            raise ConfigError(f"{flag} takes {', '.join(choices)}, not '{value}'")
    if (opts.channel_order == "gray") != (opts.frames_order == "gray"):
        raise ConfigError("a grayscale graph takes grayscale frames, a colour one colour frames",
                          fix="give --input-order gray with --channel-order gray, else rgb or bgr")


def normalization(opts: ImportOptions, channels: int) -> tuple[float, list[float], list[float]]:
    if opts.normalization not in NORMALIZATIONS:
        raise ConfigError(f"unknown normalization '{opts.normalization}'", fix=f"choose {', '.join(NORMALIZATIONS)}")
    scale, mean, std = NORMALIZATIONS[opts.normalization]
    scale = opts.scale if opts.scale is not None else scale
    mean, std = list(opts.mean or mean), list(opts.std or std)
    if channels == 1:
        mean, std = mean[:1], std[:1]
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise ConfigError(f"--mean and --std need {channels} values each, std above zero")
    return scale, mean, std
