"""Training configuration: data, not code. Loaded from YAML and overridden by CLI flags."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from edgeseg.errors import ConfigError
from edgeseg.training.augment import AugmentConfig

LOSSES = ("ce", "dice", "ce+dice")
CLASS_WEIGHTS = ("none", "sqrt", "inverse")


@dataclass
class TrainConfig:
    data: str = ""
    out: str = "runs/train"
    arch: str = "unet"
    arch_kwargs: dict = field(default_factory=dict)
    input_size: int = 256
    crop_size: int | None = None  # train on crops of this side at the model's scale (None: whole images)
    channels: int | None = None  # None: as the data set's images are (1 for grayscale)
    epochs: int = 30
    batch_size: int = 8
    lr: float = 3e-3
    weight_decay: float = 1e-4
    dropout: float = 0.1
    ema_decay: float | None = None  # evaluate and keep an exponential moving average of the weights
    warmup_epochs: float = 1.0
    loss: str = "ce+dice"
    # fuse the loss into a few loops with torch.compile (training steps 1.2x faster at 256 px;
    # uncompiled where no C++ compiler is found)
    compile_loss: bool = True
    class_weights: str = "sqrt"  # from pixel frequency in the train split
    max_class_weight: float = 10.0
    oversample: float = 0.3  # repeat-factor threshold: images with rarer classes are seen more (0: off)
    defect_free_fraction: float = 1.0  # share of defect-free images drawn each epoch
    bf16: str = "auto"  # autocast to bfloat16 on CPUs with AMX or AVX-512 BF16: auto | on | off
    seed: int = 0
    # no epoch starts that is expected to end past this wall time, with the calibration after it
    max_minutes: float | None = None
    # share of the run (of max_minutes, else of the epochs) trained on batches at half their side
    # first: whole-image context at a quarter of the cost per sample (progressive resizing; 0: off)
    half_size_share: float = 0.0
    calibrate: bool = True  # fit per-class score offsets on the train split after training (calibrate.py)
    # share of the fitted offsets applied: fitted on images the model has learnt, they overshoot on new ones
    calibration_strength: float = 1.0
    threads: int | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def validate(self) -> None:
        for f in dataclasses.fields(self):  # YAML's "no" in quotes is a string, and any string is true
            value = getattr(self, f.name)
            if f.type == "bool" and not isinstance(value, bool):
                raise ConfigError(f"{f.name} must be true or false, not {value!r}")
        if self.input_size % 32 or self.input_size < 64:
            raise ConfigError(f"input size {self.input_size} must be a multiple of 32 and at least 64",
                              fix="use 256 or 512")
        if self.crop_size is not None and (self.crop_size % 32 or not 32 <= self.crop_size <= self.input_size):
            raise ConfigError(f"crop size {self.crop_size} must be a multiple of 32 between 32 and the input size")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss '{self.loss}'", fix=f"choose one of {', '.join(LOSSES)}")
        if self.class_weights not in CLASS_WEIGHTS:
            raise ConfigError(f"unknown class weighting '{self.class_weights}'",
                              fix=f"choose one of {', '.join(CLASS_WEIGHTS)}")
        if self.channels not in (None, 1, 3):
            raise ConfigError(f"channels must be 1 or 3, not {self.channels}")
        if self.bf16 not in ("auto", "on", "off"):
            raise ConfigError(f"bf16 must be auto, on or off, not {self.bf16}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch size must be at least 1")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ConfigError(f"ema_decay must be in (0, 1), not {self.ema_decay}", fix="try 0.995, or leave it unset")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), not {self.dropout}")
        if not 0 <= self.half_size_share < 1:
            raise ConfigError(f"half_size_share must be in [0, 1), not {self.half_size_share}",
                              fix="use 0 to train at full size throughout, 0.5 for the first half of the run")
        if not 0 < self.calibration_strength <= 1:
            raise ConfigError(f"calibration_strength must be in (0, 1], not {self.calibration_strength}",
                              fix="use 1 for the offsets as fitted, 0.5 for half of them, or calibrate: false")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        values = dict(values)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown training settings: {', '.join(sorted(unknown))}",
                              fix=f"known settings: {', '.join(sorted(known))}")
        augment = values.pop("augment", None) or {}
        aug_known = {f.name for f in dataclasses.fields(AugmentConfig)}
        if set(augment) - aug_known:
            raise ConfigError(f"unknown augment settings: {', '.join(sorted(set(augment) - aug_known))}",
                              fix=f"known: {', '.join(sorted(aug_known))}")
        aug = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in augment.items()})
        return cls(**values, augment=aug)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except OSError as e:
            raise ConfigError(f"cannot read training config ({e.strerror})", path) from None
        except yaml.YAMLError as e:
            raise ConfigError(f"not valid YAML ({e})", path) from None
        if not isinstance(values, dict):
            raise ConfigError("a training config is a mapping of setting: value", path)
        return cls.from_dict(values)
