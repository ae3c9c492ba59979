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
import yaml

from edgeseg.errors import ConfigError
from edgeseg.runtime.regions import Region

_LIMITS = ("max_regions", "max_region_area", "max_total_area")


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


@dataclass
class InspectionRules:
    rules: list[Rule] = field(default_factory=lambda: [Rule("any", max_regions=0)])  # any defect fails
    confidence_threshold: float | None = None
    min_region_area: int = 1

    @classmethod
    def from_dict(cls, values: dict, class_names: list[str], source: str | Path | None = None) -> InspectionRules:
        values = dict(values or {})
        unknown = set(values) - {"rules", "confidence_threshold", "min_region_area"}
        if unknown:
            raise ConfigError(f"unknown settings {', '.join(sorted(unknown))}", source,
                              "known: rules, confidence_threshold, min_region_area")
        rules = []
        for entry in values.get("rules") or []:
            if not isinstance(entry, dict) or "class" not in entry:
                raise ConfigError(f"each rule needs a class: {entry!r}", source, "write - class: NAME")
            target = entry["class"]
            if target != "any" and target not in class_names:
                raise ConfigError(f"rule for unknown class '{target}'", source,
                                  f"classes: {', '.join(class_names)} (or any)")
            limits = {k: v for k, v in entry.items() if k != "class"}
            if set(limits) - set(_LIMITS) or not limits:
                raise ConfigError(f"rule for {target} needs one of {', '.join(_LIMITS)}", source)
            if any(not isinstance(v, int) or v < 0 for v in limits.values()):
                raise ConfigError(f"rule limits for {target} must be whole numbers >= 0", source)
            rules.append(Rule(target, **limits))
        threshold = values.get("confidence_threshold")
        if threshold is not None and not 0 <= threshold <= 1:
            raise ConfigError(f"confidence_threshold must be in [0, 1], not {threshold}", source)
        return cls(rules or cls().rules, threshold, int(values.get("min_region_area", 1)))

    @classmethod
    def from_yaml(cls, path: str | Path, class_names: list[str]) -> InspectionRules:
        path = Path(path)
        try:
            values = yaml.safe_load(path.read_text())
        except OSError as e:
            raise ConfigError(f"cannot read rules ({e.strerror})", path) from None
        except yaml.YAMLError as e:
            raise ConfigError(f"not valid YAML ({str(e).splitlines()[0]})", path) from None
        if values is not None and not isinstance(values, dict):
            raise ConfigError("rules file must be a mapping", path, "see edgeseg/runtime/rules.py for an example")
        return cls.from_dict(values, class_names, path)

    def apply_threshold(self, mask: np.ndarray, confidence: np.ndarray | None, out: np.ndarray) -> np.ndarray:
        """The mask with pixels below the confidence threshold set to background, into ``out``."""
        np.copyto(out, mask)
        if self.confidence_threshold is not None and confidence is not None:
            out[confidence < self.confidence_threshold] = 0
        return out

    def judge(self, regions: list[Region]) -> Verdict:
        reasons = [reason for rule in self.rules for reason in rule.failures(regions)]
        return Verdict(not reasons, reasons)
