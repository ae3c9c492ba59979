"""Per-class operating points: one limit per defect class instead of one for all. Classes differ
in what a model gets wrong: specks of one class on good parts, small true defects of another. A
rule per class, "a region of this class larger than A fails", lets an engineer pass the specks of
the one and still catch the other.

Searched by coordinate descent from the sweep's best global setting (its confidence threshold and
minimum region area): each class in turn takes the limit from ``LIMITS`` that rejects the fewest
good parts while escapes stay within the allowed rate, twice round. The ground truth keeps its
verdicts (any true defect region fails the part), so only the predictions' judgement changes.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from edgeseg.engines.part_accuracy import PartImages, part_report, predicted_regions
from edgeseg.runtime.rules import InspectionRules, Rule

LIMITS = (0, 16, 32, 64, 128, 256, 512, 1024, 2048)  # frame pixels; 0: any region of the class fails
PASSES = 2


def per_class_rules(base: InspectionRules, limits: dict[str, int]) -> InspectionRules:
    return replace(base, rules=[Rule(name, max_region_area=limit) for name, limit in limits.items()])


def search(images: PartImages, base: InspectionRules, class_names: list[str],
           max_escape_rate: float) -> tuple[InspectionRules, dict] | None:
    """The per-class rules with the fewest false rejects within ``max_escape_rate``, and their
    part report's counts; None where even "any region fails" escapes more."""
    regions = predicted_regions(images, base, class_names)
    truth = images.truly_failed
    allowed = math.floor(max_escape_rate * int(truth.sum()) + 1e-9)

    def cost(limits: dict[str, int]) -> tuple[int, int]:
        rules = per_class_rules(base, limits)
        failed = np.array([not rules.judge(r).passed for r in regions], bool)
        return int(np.sum(~truth & failed)), int(np.sum(truth & ~failed))  # false rejects, escapes

    limits = {name: 0 for name in class_names[1:]}
    best = cost(limits)
    if best[1] > allowed:
        return None
    for _ in range(PASSES):
        for name in class_names[1:]:
            for limit in LIMITS:
                trial = {**limits, name: limit}
                result = cost(trial)
                if result[1] <= allowed and result < best:
                    limits, best = trial, result
    rules = per_class_rules(base, limits)
    return rules, part_report(images, rules, class_names).counts()
