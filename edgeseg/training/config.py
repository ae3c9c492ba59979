"""Training configuration: data, not code. Loaded from YAML, checked by a schema (wrong types
are refused, not coerced) and overridden by CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from edgeseg.errors import ConfigError
from edgeseg.settings import config_error, read_yaml_mapping
from edgeseg.training.augment import AugmentConfig

LOSSES = ("ce", "dice", "ce+dice")
CLASS_WEIGHTS = ("none", "sqrt", "inverse")
DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def is_device_setting(setting: str) -> bool:
    kind, _, index = setting.partition(":")
    return setting in ("auto", "cpu", "cuda") or (kind == "cuda" and index.isdigit())


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)

    data: str = ""
    out: str = "runs/train"
    arch: str = "unet"
    arch_kwargs: dict[str, Any] = {}
    input_size: int = 256  # the model's side, or its shorter side where it keeps the photos' aspect
    # where every train photo has one aspect (within 3 %), the model takes it: input_size on the
    # shorter side, the longer one rounded to the stride (False: square)
    keep_aspect: bool = True
    input_width: int | None = None  # both given: exactly this input, whatever the photos
    input_height: int | None = None
    crop_size: int | None = None  # train on square crops of this side at the model's scale (None: whole images)
    channels: int | None = None  # None: as the data set's images are (1 for grayscale)
    epochs: int = 30
    batch_size: int = 8
    lr: float = 3e-3
    weight_decay: float = 1e-4
    dropout: float = 0.1
    ema_decay: float | None = None  # evaluate and keep an exponential moving average of the weights
    warmup_epochs: float = 1.0
    loss: str = "ce+dice"
    # the loss on class scores at 1/n of the input's side, against each class's share of every
    # n x n block of the mask: the last upsampling and the loss cost 1/n^2 (1: at full size)
    loss_downscale: int = 1
    # fuse the loss into a few loops with torch.compile (uncompiled where no C++ compiler is found)
    compile_loss: bool = True
    class_weights: str = "sqrt"  # from pixel frequency in the train split
    max_class_weight: float = 10.0
    oversample: float = 0.3  # repeat-factor threshold: images with rarer classes are seen more (0: off)
    defect_free_fraction: float = 1.0  # share of defect-free images drawn each epoch
    # draw photos in proportion to their pixel count, as scores at each photo's own size weigh
    # them (no change where every photo has one size)
    sample_by_area: bool = False
    # auto: a CUDA GPU where PyTorch sees one (each torchrun rank its own), else the CPU | cpu | cuda | cuda:N
    device: str = "auto"
    # autocast to bfloat16 where it is native (GPUs from Ampere on, CPUs with AMX or AVX-512 BF16): auto | on | off
    bf16: str = "auto"
    seed: int = 0
    # no epoch starts that is expected to end past this wall time, with the calibration after it
    max_minutes: float | None = None
    # share of the run (of max_minutes, else of the epochs) trained first on batches made at
    # reduced_size_scale of their side: whole-image context at scale^2 of the cost per sample
    # (progressive resizing; 0: off; half_size_share, its older name, is read as well)
    reduced_size_share: float = Field(0.0, validation_alias=AliasChoices("reduced_size_share", "half_size_share"))
    reduced_size_scale: float = 0.5  # times the side, each reduced side rounded to the architecture's stride
    # score val after every reduced epoch; false: only after the first reduced epoch and one the run
    # ends with (full-size epochs always are: the kept model comes from them, the time to training)
    evaluate_reduced_epochs: bool = True
    calibrate: bool = True  # fit per-class score offsets on the train split after training (calibrate.py)
    # share of the fitted offsets applied: fitted on images the model has learnt, they overshoot on new ones
    calibration_strength: float = 1.0
    threads: int | None = None
    augment: AugmentConfig = AugmentConfig()

    def __init__(self, **values: Any):
        try:
            super().__init__(**values)
        except ValidationError as e:
            raise config_error(e) from None

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as e:
            raise config_error(e) from None

    @field_validator("input_size")
    @classmethod
    def _input_size(cls, size: int) -> int:
        if size % 32 or size < 64:
            raise ValueError(f"input size {size} must be a multiple of 32 and at least 64; use 256 or 512")
        return size

    @field_validator("input_width", "input_height")
    @classmethod
    def _side(cls, size: int | None, info) -> int | None:
        if size is not None and (size % 32 or size < 64):
            raise ValueError(f"{info.field_name} {size} must be a multiple of 32 and at least 64")
        return size

    @field_validator("crop_size")
    @classmethod
    def _crop_size(cls, size: int | None) -> int | None:
        if size is not None and (size % 32 or size < 32):
            raise ValueError(f"crop size {size} must be a multiple of 32 between 32 and the input size")
        return size

    @field_validator("loss", "class_weights", "bf16")
    @classmethod
    def _one_of(cls, value: str, info) -> str:
        choices = {"loss": LOSSES, "class_weights": CLASS_WEIGHTS, "bf16": ("auto", "on", "off")}[info.field_name]
        if value not in choices:
            what = {"loss": "loss", "class_weights": "class weighting", "bf16": "bf16 setting"}[info.field_name]
            raise ValueError(f"unknown {what} '{value}': choose one of {', '.join(choices)}")
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, setting: str) -> str:
        if not is_device_setting(setting):
            raise ValueError(f"unknown device '{setting}': choose {DEVICE_CHOICES}")
        return setting

    @field_validator("channels")
    @classmethod
    def _channels(cls, channels: int | None) -> int | None:
        if channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1 or 3, not {channels}")
        return channels

    @field_validator("epochs", "batch_size")
    @classmethod
    def _at_least_one(cls, value: int, info) -> int:
        if value < 1:
            raise ValueError(f"{info.field_name} must be at least 1, not {value}")
        return value

    @field_validator("ema_decay")
    @classmethod
    def _ema_decay(cls, decay: float | None) -> float | None:
        if decay is not None and not 0 < decay < 1:
            raise ValueError(f"ema_decay must be in (0, 1), not {decay}: try 0.995, or leave it unset")
        return decay

    @field_validator("dropout", "reduced_size_share")
    @classmethod
    def _share_below_one(cls, value: float, info) -> float:
        if not 0 <= value < 1:
            hint = {"reduced_size_share": ": use 0 to train at full size throughout, 0.5 for the first half of "
                                          "the run"}
            raise ValueError(f"{info.field_name} must be in [0, 1), not {value}{hint.get(info.field_name, '')}")
        return value

    @field_validator("reduced_size_scale")
    @classmethod
    def _scale(cls, scale: float) -> float:
        if not 0 < scale < 1:
            raise ValueError(f"reduced_size_scale must be in (0, 1), not {scale}: 0.5 halves the side, 0.75 takes "
                             "three quarters of it")
        return scale

    @field_validator("loss_downscale")
    @classmethod
    def _loss_downscale(cls, n: int) -> int:
        if n not in (1, 2, 4):
            raise ValueError(f"loss_downscale must be 1, 2 or 4, not {n}: 1 scores the loss at full size")
        return n

    @field_validator("calibration_strength")
    @classmethod
    def _calibration_strength(cls, strength: float) -> float:
        if not 0 < strength <= 1:
            raise ValueError(f"calibration_strength must be in (0, 1], not {strength}: use 1 for the offsets as "
                             "fitted, 0.5 for half of them, or calibrate: false")
        return strength

    def validate(self) -> None:
        """What spans several settings (each setting is checked as it is set)."""
        if self.crop_size is not None and self.crop_size > min(self.input_height or self.input_size,
                                                                self.input_width or self.input_size):
            raise ConfigError(f"crop size {self.crop_size} must be a multiple of 32 between 32 and the input size")
        if (self.input_width is None) != (self.input_height is None):
            raise ConfigError("input_width and input_height go together", fix="give both, or neither")

    def to_dict(self) -> dict:
        return self.model_dump()

    @classmethod
    def from_dict(cls, values: dict, source: str | Path | None = None) -> TrainConfig:
        try:
            return cls(**values)
        except ConfigError as e:  # what was wrong, now with the file it came from
            known = f"known settings: {', '.join(cls.model_fields)}" if "unknown settings" in e.what else None
            raise ConfigError(e.what, source, known) from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(read_yaml_mapping(path, "training config"), path)
