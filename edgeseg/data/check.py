"""``edgeseg data check``: find what would break training, and report class balance.

Errors (non-zero exit): unpaired files, unreadable or truncated files, size mismatches, ids or
colours not in the class table, split lists naming missing files, an empty data set.
Warnings: unlabelled pixels, classes with no pixels, a mix of grayscale and colour images.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeseg.data.classes import IGNORE_ID
from edgeseg.data.imageio import colors_to_ids, depth_holding, read_image, read_mask_raw, unknown_ids
from edgeseg.data.layout import DatasetLayout, name_examples
from edgeseg.errors import DatasetError
from edgeseg.progress import progress


@dataclass
class _Unknown:
    pixels: int = 0
    files: list[str] = field(default_factory=list)


@dataclass
class CheckReport:
    root: Path
    class_names: list[str]
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    pixels: dict[str, np.ndarray] = field(default_factory=dict)  # per split: pixels per class
    images: dict[str, np.ndarray] = field(default_factory=dict)  # per split: images holding each class
    counts: dict[str, int] = field(default_factory=dict)  # per split: images checked
    ignored_pixels: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def render(self) -> str:
        lines = [f"data set {self.root}", ""]
        split_desc = ", ".join(f"{s} {n}" for s, n in self.counts.items())
        lines.append(f"images checked: {sum(self.counts.values())} ({split_desc})")
        if self.pixels:
            lines += ["", "class balance"]
            header = f"  {'id':>3}  {'class':<16}"
            for split in self.pixels:
                header += f"  {split + ' pixels':>16}  {split + ' images':>13}"
            lines.append(header)
            totals = {s: max(p.sum(), 1) for s, p in self.pixels.items()}
            for cid, name in enumerate(self.class_names):
                row = f"  {cid:>3}  {name:<16}"
                for split, pix in self.pixels.items():
                    row += f"  {100 * pix[cid] / totals[split]:>15.3f}%  {self.images[split][cid]:>13d}"
                lines.append(row)
            if self.ignored_pixels:
                lines.append(f"  {IGNORE_ID:>3}  {'(unlabelled)':<16}  {self.ignored_pixels} pixels, "
                             "ignored in training")
        for title, items in (("errors", self.errors), ("warnings", self.warnings)):
            if items:
                lines += ["", f"{title} ({len(items)})"] + [f"  - {item}" for item in items]
        lines += ["", "OK: ready to train" if self.ok and not self.warnings else
                  "OK with warnings: training will run" if self.ok else
                  f"FAILED: {len(self.errors)} error(s) to fix before training"]
        return "\n".join(lines)


@dataclass
class _Findings:
    """What the pass over every image pair found, before it becomes lines of the report."""

    unknown_ids: dict[int, _Unknown] = field(default_factory=lambda: defaultdict(_Unknown))
    unknown_colors: dict[tuple, _Unknown] = field(default_factory=lambda: defaultdict(_Unknown))
    unreadable: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=lambda: {"grayscale": 0, "colour": 0})
    sixteen_bit: int = 0  # 16-bit images, and the largest value in any of them
    largest_value: int = 0


def check_dataset(root: str | Path, show_progress: bool = True) -> CheckReport:
    layout = DatasetLayout.open(root)
    report = CheckReport(layout.root, layout.classes.names)
    _check_files(layout, report)
    if not layout.paired_stems:
        report.errors.append("no image has a mask: nothing to train on")
        return report
    split_of = {s: split for split in ("train", "val") for s in layout.split_stems(split)}
    found = _Findings()
    for stem in progress(layout.paired_stems, desc="checking", unit="img", disable=not show_progress, leave=False):
        _check_pair(layout, stem, split_of.get(stem, "unsplit"), report, found)
    _report_findings(found, report)
    _check_balance(layout, report)
    return report


def _check_files(layout: DatasetLayout, report: CheckReport) -> None:
    """Unpaired files and split lists that name what is not there, or leave out what is."""
    for what, examples in layout.unpaired():
        report.errors.append(f"{len(examples)} {what}: {name_examples(examples)}")
    if layout.split_lists:
        listed = {s for stems in layout.split_lists.values() for s in stems}
        unlisted = [s for s in layout.paired_stems if s not in listed]
        if unlisted:
            report.warnings.append(f"{len(unlisted)} image(s) in no split list, so never used: "
                                   f"{name_examples(unlisted)}")


def _read_pair(layout: DatasetLayout, stem: str, found: _Findings):
    """The image and raw mask of one stem, or None where either cannot be read."""
    try:
        return read_image(layout.images[stem], bit_depth=None), read_mask_raw(layout.masks[stem])
    except DatasetError as e:
        found.unreadable.append(f"{e.path.name} ({e.what})")
        return None


def _check_pair(layout: DatasetLayout, stem: str, split: str, report: CheckReport, found: _Findings) -> None:
    pair = _read_pair(layout, stem, found)
    if pair is None:
        return
    image, raw = pair
    found.kinds["colour" if image.ndim == 3 else "grayscale"] += 1
    if image.dtype == np.uint16:
        found.sixteen_bit += 1
        found.largest_value = max(found.largest_value, int(image.max()))
    if image.shape[:2] != raw.shape[:2]:
        found.mismatched.append(f"{stem} (image {image.shape[1]}x{image.shape[0]}, "
                                f"mask {raw.shape[1]}x{raw.shape[0]})")
        return
    ids, ignored = _mask_ids(layout, stem, raw, found)
    if ignored:
        found.unlabelled.append(stem)
        report.ignored_pixels += ignored
    n = layout.classes.num_classes
    counts = np.bincount(ids.ravel(), minlength=256)[:n]
    report.pixels.setdefault(split, np.zeros(n, np.int64))
    report.images.setdefault(split, np.zeros(n, np.int64))
    report.pixels[split] += counts
    report.images[split] += counts > 0
    report.counts[split] = report.counts.get(split, 0) + 1


def _mask_ids(layout: DatasetLayout, stem: str, raw: np.ndarray, found: _Findings) -> tuple[np.ndarray, int]:
    """A mask's class ids, noting ids or colours the class table lacks; and its unlabelled pixels."""
    table, name = layout.classes, layout.masks[stem].name
    if raw.ndim == 3:
        ids, unknown = colors_to_ids(raw, table)
        for color, count in unknown.items():
            found.unknown_colors[color].pixels += count
            found.unknown_colors[color].files.append(name)
        return ids, int(np.count_nonzero(ids == IGNORE_ID)) - sum(unknown.values())
    for cid, count in unknown_ids(raw, table).items():
        found.unknown_ids[cid].pixels += count
        found.unknown_ids[cid].files.append(name)
    return raw, int(np.count_nonzero(raw == IGNORE_ID))


def _report_findings(found: _Findings, report: CheckReport) -> None:
    if found.sixteen_bit:
        depth = depth_holding(found.largest_value)
        report.warnings.append(f"{found.sixteen_bit} 16-bit image(s), values up to {found.largest_value}: taken as "
                               f"{depth}-bit (full scale {(1 << depth) - 1}) by training, which records it in the "
                               "checkpoint and the bundle for the runtime")
    if found.unreadable:
        report.errors.append(f"{len(found.unreadable)} unreadable or truncated file(s): "
                             f"{name_examples(found.unreadable)}")
    if found.mismatched:
        report.errors.append(f"{len(found.mismatched)} mask(s) whose size differs from the image: "
                             f"{name_examples(found.mismatched)}")
    for cid, seen in sorted(found.unknown_ids.items()):
        report.errors.append(f"mask value {cid} is not in classes.csv: {seen.pixels} pixels in "
                             f"{len(seen.files)} mask(s): {name_examples(seen.files)}")
    for color, seen in sorted(found.unknown_colors.items()):
        report.errors.append(f"colour rgb{color} is not in classes.csv: {seen.pixels} pixels in "
                             f"{len(seen.files)} mask(s): {name_examples(seen.files)}")
    if found.unlabelled:
        report.warnings.append(f"{len(found.unlabelled)} mask(s) have unlabelled pixels ({IGNORE_ID}), ignored in "
                               f"training: {name_examples(found.unlabelled)}")
    kinds = found.kinds
    if kinds["grayscale"] and kinds["colour"]:
        report.warnings.append(f"mixed image kinds ({kinds['grayscale']} grayscale, {kinds['colour']} colour): "
                               "all are converted to the model's channel count")


def _check_balance(layout: DatasetLayout, report: CheckReport) -> None:
    """Classes without pixels, and splits without images."""
    names = layout.classes.names
    if report.pixels:
        total = sum(report.pixels.values())
        for cid in np.flatnonzero(total == 0):
            report.warnings.append(f"class {cid} '{names[cid]}' has no pixels in any mask")
        if "train" in report.pixels:
            for cid in np.flatnonzero((report.pixels["train"] == 0) & (total > 0)):
                report.warnings.append(f"class {cid} '{names[cid]}' has no pixels in the train split")
    for split in ("train", "val"):
        if not layout.split_stems(split):
            report.errors.append(f"the {split} split has no paired images")
