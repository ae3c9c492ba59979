"""Pass/fail verdicts from rules kept in a YAML file, for example::

    confidence_threshold: 0.6   # pixels less sure than this count as background
    min_region_area: 4          # specks smaller than this are ignored
    rules:
      - class: crack            # any crack fails the part
        max_regions: 0
      - class: blowhole         # small blowholes pass, one over 40 px fails
        max_region_area: 40
      - class: any              # every defect class together
        max_total_area: 500

A rule fails the frame when its class has more regions than ``max_regions``, a region larger
than ``max_region_area``, or more than ``max_total_area`` pixels in all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from edgeseg.runtime.regions import Region
from edgeseg.settings import config_error, read_yaml_mapping

_LIMITS = ("max_regions", "max_region_area", "max_total_area")
# Smaller specks are ignored by default: on magnetic-tile val (docs/verify.md) 8 px rejected fewer
# good parts than 1 px with as few escapes as any setting swept; at 1280x1024 through a 256 px
# model one model pixel is 20 frame pixels, so there it removes nothing.
DEFAULT_MIN_REGION_AREA = 8


@dataclass
class Rule:
    target: str  # a class name, or "any" for every defect class
    max_regions: int | None = None
    max_region_area: int | None = None
    max_total_area: int | None = None

    def failures(self, regions: list[Region]) -> list[str]:
        mine = [r for r in regions if self.target in ("any", r.class_name)]
        reasons = []
        if self.max_regions is not None and len(mine) > self.max_regions:
            reasons.append(f"{self.target}: {len(mine)} regions > {self.max_regions}")
        largest = max((r.area for r in mine), default=0)
        if self.max_region_area is not None and largest > self.max_region_area:
            reasons.append(f"{self.target}: a region of {largest} px > {self.max_region_area} px")
        total = sum(r.area for r in mine)
        if self.max_total_area is not None and total > self.max_total_area:
            reasons.append(f"{self.target}: {total} px in all > {self.max_total_area} px")
        return reasons


@dataclass
class Verdict:
    passed: bool
    reasons: list[str]

    def to_dict(self) -> dict:
        return {"verdict": "pass" if self.passed else "fail", "reasons": self.reasons}


class _RuleEntry(BaseModel):
    """One rule as written in a rules file (the schema; ``Rule`` is what runs)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    target: str = Field(alias="class")
    max_regions: int | None = None
    max_region_area: int | None = None
    max_total_area: int | None = None

    @field_validator("target")
    @classmethod
    def _known_class(cls, target: str, info: ValidationInfo) -> str:
        names = (info.context or {}).get("class_names", [])
        if target != "any" and target not in names:
            raise ValueError(f"rule for unknown class '{target}': classes are {', '.join(names)} (or any)")
        return target

    @field_validator(*_LIMITS)
    @classmethod
    def _whole(cls, limit: int | None) -> int | None:
        if limit is not None and limit < 0:
            raise ValueError(f"rule limits must be whole numbers >= 0, not {limit}")
        return limit

    @model_validator(mode="after")
    def _has_a_limit(self) -> _RuleEntry:
        if all(getattr(self, name) is None for name in _LIMITS):
            raise ValueError(f"rule for {self.target} needs one of {', '.join(_LIMITS)}")
        return self


class _RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    rules: list[_RuleEntry] | None = None
    confidence_threshold: float | None = None
    min_region_area: int = DEFAULT_MIN_REGION_AREA

    @field_validator("confidence_threshold")
    @classmethod
    def _share(cls, threshold: float | None) -> float | None:
        if threshold is not None and not 0 <= threshold <= 1:
            raise ValueError(f"confidence_threshold must be in [0, 1], not {threshold}")
        return threshold

    @field_validator("min_region_area")
    @classmethod
    def _not_negative(cls, area: int) -> int:
        if area < 0:
            raise ValueError(f"min_region_area must be a whole number of pixels >= 0, not {area}")
        return area


@dataclass
class InspectionRules:
    """The default: any defect region of at least DEFAULT_MIN_REGION_AREA frame pixels fails the
    part (docs/verify.md has what it costs in escapes and false rejects)."""
    rules: list[Rule] = field(default_factory=lambda: [Rule("any", max_regions=0)])
    confidence_threshold: float | None = None
    min_region_area: int = DEFAULT_MIN_REGION_AREA

    @classmethod
    def from_dict(cls, values: dict | None, class_names: list[str],
                  source: str | Path | None = None) -> InspectionRules:
        try:
            checked = _RulesFile.model_validate(values or {}, context={"class_names": class_names})
        except ValidationError as e:
            raise config_error(e, source, "see docs/runtime.md#rules for the format") from None
        rules = [Rule(r.target, r.max_regions, r.max_region_area, r.max_total_area) for r in checked.rules or []]
        return cls(rules or cls().rules, checked.confidence_threshold, checked.min_region_area)

    @classmethod
    def from_yaml(cls, path: str | Path, class_names: list[str]) -> InspectionRules:
        return cls.from_dict(read_yaml_mapping(path, "rules file"), class_names, path)

    def apply_threshold(self, mask: np.ndarray, confidence: np.ndarray | None, out: np.ndarray) -> np.ndarray:
        """The mask with pixels below the confidence threshold set to background, into ``out``."""
        np.copyto(out, mask)
        if self.confidence_threshold is not None and confidence is not None:
            out[confidence < self.confidence_threshold] = 0
        return out

    def to_dict(self) -> dict:
        """The rules as a rules file holds them (from_dict reads it back)."""
        rules = [{"class": r.target, **{name: getattr(r, name) for name in _LIMITS if getattr(r, name) is not None}}
                 for r in self.rules]
        return {"confidence_threshold": self.confidence_threshold, "min_region_area": self.min_region_area,
                "rules": rules}

    def judge(self, regions: list[Region]) -> Verdict:
        reasons = [reason for rule in self.rules for reason in rule.failures(regions)]
        return Verdict(not reasons, reasons)
