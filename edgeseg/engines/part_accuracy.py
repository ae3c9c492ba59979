"""Part-level accuracy, as a line is judged: the rules applied to each labelled image's ground
truth give its true verdict, applied to the engine's mask its predicted one (as the station
judges a frame: the confidence threshold at model size, regions scaled to the image's own size).
An escape is a defective part passed, a false reject a good part failed. A sweep of the two rule
settings that trade one for the other (``min_region_area``, ``confidence_threshold``) shows the
operating points an engineer can pick from."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from edgeseg.runtime.regions import Region, find_regions
from edgeseg.runtime.rules import InspectionRules

SWEEP_AREAS = (1, 4, 8, 16, 32, 64, 128, 256, 512, 1024)  # frame pixels
SWEEP_THRESHOLDS = (None, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


@dataclass
class PartImages:
    """What the verdicts need of each image: its name, its own size, whether its ground truth
    fails the rules and which defect classes it shows; the engine's model-size mask and confidence."""
    names: list[str]
    sizes: list[tuple[int, ...]]  # (height, width)
    truly_failed: np.ndarray  # bool per image
    true_classes: list[set[str]]
    masks: np.ndarray  # (N, h, w) uint8 at model size
    confidences: np.ndarray | None  # (N, h, w) float32, or None where the bundle has no confidence output


def part_images(names: list[str], native_truth: list[np.ndarray], masks: np.ndarray, confidences: np.ndarray | None,
                rules: InspectionRules, class_names: list[str]) -> PartImages:
    failed, classes = [], []
    for truth in native_truth:
        regions = find_regions(truth, class_names, None, rules.min_region_area)
        failed.append(not rules.judge(regions).passed)
        classes.append({r.class_name for r in regions})
    return PartImages(names, [t.shape[:2] for t in native_truth], np.array(failed, bool), classes, masks, confidences)


def predicted_regions(images: PartImages, rules: InspectionRules, class_names: list[str]) -> list[list[Region]]:
    """The regions the station would find in each image under ``rules``' threshold and minimum area."""
    found = []
    model_height, model_width = images.masks.shape[1:3]
    shown = np.empty((model_height, model_width), np.uint8)
    for i, (height, width) in enumerate(images.sizes):
        confidence = images.confidences[i] if images.confidences is not None else None
        rules.apply_threshold(images.masks[i], confidence, shown)
        scale = (width / model_width, height / model_height)
        found.append(find_regions(shown, class_names, confidence, rules.min_region_area, scale=scale))
    return found


def predicted(images: PartImages, rules: InspectionRules, class_names: list[str]) -> tuple[np.ndarray, list[set[str]]]:
    """Each image's predicted verdict (True: failed) and the defect classes found, under ``rules``."""
    regions = predicted_regions(images, rules, class_names)
    failed = np.array([not rules.judge(r).passed for r in regions], bool)
    return failed, [{r.class_name for r in image} for image in regions]


@dataclass
class PartReport:
    parts: int
    defective: int
    escapes: list[str]  # defective parts passed
    false_rejects: list[str]  # good parts failed
    per_class: dict[str, dict] = field(default_factory=dict)

    @property
    def escape_rate(self) -> float:
        return len(self.escapes) / self.defective if self.defective else 0.0

    @property
    def false_reject_rate(self) -> float:
        good = self.parts - self.defective
        return len(self.false_rejects) / good if good else 0.0

    def counts(self) -> dict:
        """Escapes and false rejects, counted and as rates (a row of the sweep)."""
        return {"escapes": len(self.escapes), "escape_rate": round(self.escape_rate, 4),
                "false_rejects": len(self.false_rejects), "false_reject_rate": round(self.false_reject_rate, 4)}

    def to_dict(self) -> dict:
        return {"parts": self.parts, "defective": self.defective, "good": self.parts - self.defective,
                **self.counts(), "escaped": self.escapes, "falsely_rejected": self.false_rejects,
                "per_class": self.per_class}


def part_report(images: PartImages, rules: InspectionRules, class_names: list[str]) -> PartReport:
    failed, found = predicted(images, rules, class_names)
    truth, names = images.truly_failed, images.names
    report = PartReport(len(names), int(truth.sum()),
                        [n for n, t, f in zip(names, truth, failed, strict=True) if t and not f],
                        [n for n, t, f in zip(names, truth, failed, strict=True) if f and not t])
    for name in class_names[1:]:
        shows = [name in classes for classes in images.true_classes]
        seen = [name in classes for classes in found]
        report.per_class[name] = {
            "parts_with_it": sum(shows),
            "missed": [n for n, s, p in zip(names, shows, seen, strict=True) if s and not p],
            "found_where_absent": sum(p and not s for s, p in zip(shows, seen, strict=True))}
    return report


def sweep(images: PartImages, rules: InspectionRules, class_names: list[str],
          areas: tuple[int, ...] = SWEEP_AREAS, thresholds: tuple = SWEEP_THRESHOLDS) -> list[dict]:
    """Escapes and false rejects for every (min_region_area, confidence_threshold) pair, the other
    rules kept; thresholds are left out where the bundle has no confidence output."""
    if images.confidences is None:
        thresholds = (None,)
    rows = []
    for threshold in thresholds:
        for area in areas:
            setting = replace(rules, min_region_area=area, confidence_threshold=threshold)
            rows.append({"min_region_area": area, "confidence_threshold": threshold,
                         **part_report(images, setting, class_names).counts()})
    return rows


def pareto(rows: list[dict]) -> list[dict]:
    """The settings no other beats on both escapes and false rejects, fewest escapes first."""
    front: list[dict] = []
    for row in sorted(rows, key=lambda r: (r["escapes"], r["false_rejects"], -r["min_region_area"])):
        if not front or row["false_rejects"] < front[-1]["false_rejects"]:
            front.append(row)
    return front


def suggest(rows: list[dict], max_escape_rate: float) -> dict | None:
    """The setting with the fewest false rejects whose escape rate is within ``max_escape_rate``
    (None: no setting is)."""
    within = [r for r in rows if r["escape_rate"] <= max_escape_rate + 1e-12]
    return min(within, key=lambda r: (r["false_rejects"], r["escapes"]), default=None)
