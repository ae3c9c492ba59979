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
from edgeseg.data.imageio import colors_to_ids, read_image, read_mask_raw, unknown_ids
from edgeseg.data.layout import DatasetLayout
from edgeseg.errors import DatasetError
from edgeseg.progress import progress

EXAMPLES_SHOWN = 5


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


def _examples(paths: list) -> str:
    shown = ", ".join(str(getattr(p, "name", p)) for p in paths[:EXAMPLES_SHOWN])
    return shown + (f" and {len(paths) - EXAMPLES_SHOWN} more" if len(paths) > EXAMPLES_SHOWN else "")


def check_dataset(root: str | Path, show_progress: bool = True) -> CheckReport:
    layout = DatasetLayout.open(root)
    table = layout.classes
    n = table.num_classes
    report = CheckReport(layout.root, table.names)

    if layout.images_without_mask:
        report.errors.append(f"{len(layout.images_without_mask)} image(s) without a mask in masks/: "
                             f"{_examples(layout.images_without_mask)}")
    if layout.masks_without_image:
        report.errors.append(f"{len(layout.masks_without_image)} mask(s) without an image in images/: "
                             f"{_examples(layout.masks_without_image)}")
    for split, missing in layout.missing_from_split_lists().items():
        if missing:
            report.errors.append(f"{split}.txt names {len(missing)} stem(s) with no image or mask: "
                                 f"{_examples(missing)}")
    if layout.split_lists:
        listed = {s for stems in layout.split_lists.values() for s in stems}
        unlisted = [s for s in layout.paired_stems if s not in listed]
        if unlisted:
            report.warnings.append(f"{len(unlisted)} image(s) in no split list, so never used: {_examples(unlisted)}")
    if not layout.paired_stems:
        report.errors.append("no image has a mask: nothing to train on")
        return report

    split_of = {s: split for split in ("train", "val") for s in layout.split_stems(split)}
    unknown_id_seen: dict[int, _Unknown] = defaultdict(_Unknown)
    unknown_color_seen: dict[tuple, _Unknown] = defaultdict(_Unknown)
    unreadable, mismatched, unlabelled = [], [], []
    kinds = {"grayscale": 0, "colour": 0}
    for stem in progress(layout.paired_stems, desc="checking", unit="img", disable=not show_progress, leave=False):
        split = split_of.get(stem, "unsplit")
        try:
            image = read_image(layout.images[stem])
        except DatasetError as e:
            unreadable.append(f"{e.path.name} ({e.what})")
            continue
        try:
            raw = read_mask_raw(layout.masks[stem])
        except DatasetError as e:
            unreadable.append(f"{e.path.name} ({e.what})")
            continue
        kinds["colour" if image.ndim == 3 else "grayscale"] += 1
        if image.shape[:2] != raw.shape[:2]:
            mismatched.append(f"{stem} (image {image.shape[1]}x{image.shape[0]}, mask {raw.shape[1]}x{raw.shape[0]})")
            continue
        if raw.ndim == 3:
            ids, unknown = colors_to_ids(raw, table)
            for color, count in unknown.items():
                unknown_color_seen[color].pixels += count
                unknown_color_seen[color].files.append(layout.masks[stem].name)
            ignored = int(np.count_nonzero(ids == IGNORE_ID)) - sum(unknown.values())
        else:
            ids = raw
            for cid, count in unknown_ids(raw, table).items():
                unknown_id_seen[cid].pixels += count
                unknown_id_seen[cid].files.append(layout.masks[stem].name)
            ignored = int(np.count_nonzero(raw == IGNORE_ID))
        if ignored:
            unlabelled.append(stem)
            report.ignored_pixels += ignored
        counts = np.bincount(ids.ravel(), minlength=256)[:n]
        report.pixels.setdefault(split, np.zeros(n, np.int64))
        report.images.setdefault(split, np.zeros(n, np.int64))
        report.pixels[split] += counts
        report.images[split] += counts > 0
        report.counts[split] = report.counts.get(split, 0) + 1

    if unreadable:
        report.errors.append(f"{len(unreadable)} unreadable or truncated file(s): {_examples(unreadable)}")
    if mismatched:
        report.errors.append(f"{len(mismatched)} mask(s) whose size differs from the image: {_examples(mismatched)}")
    for cid, seen in sorted(unknown_id_seen.items()):
        report.errors.append(f"mask value {cid} is not in classes.csv: {seen.pixels} pixels in "
                             f"{len(seen.files)} mask(s): {_examples(seen.files)}")
    for color, seen in sorted(unknown_color_seen.items()):
        report.errors.append(f"colour rgb{color} is not in classes.csv: {seen.pixels} pixels in "
                             f"{len(seen.files)} mask(s): {_examples(seen.files)}")
    if unlabelled:
        report.warnings.append(f"{len(unlabelled)} mask(s) have unlabelled pixels ({IGNORE_ID}), ignored in "
                               f"training: {_examples(unlabelled)}")
    if kinds["grayscale"] and kinds["colour"]:
        report.warnings.append(f"mixed image kinds ({kinds['grayscale']} grayscale, {kinds['colour']} colour): "
                               "all are converted to the model's channel count")
    if report.pixels:
        total = sum(report.pixels.values())
        for cid in np.flatnonzero(total == 0):
            report.warnings.append(f"class {cid} '{table.names[cid]}' has no pixels in any mask")
        if "train" in report.pixels:
            for cid in np.flatnonzero((report.pixels["train"] == 0) & (total > 0)):
                report.warnings.append(f"class {cid} '{table.names[cid]}' has no pixels in the train split")
    for split in ("train", "val"):
        if not layout.split_stems(split):
            report.errors.append(f"the {split} split has no paired images")
    return report
