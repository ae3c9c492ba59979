"""Benchmark: where defect mIoU is lost between the model's size and each photo's own size.

Two measurements on a split (magnetic-tile val by default):

- the ceiling: each ground-truth mask stretched to the model's input (as training and val see it)
  and scaled back to its photo, centre to centre (``INTER_NEAREST_EXACT``, what edgeseg does) and
  corner to corner (``INTER_NEAREST``, what it did before 2026-11-30); a perfect model scores this;
- with ``--checkpoint``: the model's masks scored at model size, at model size with each image's
  confusion weighted by its photo's pixel count (the weight frame-size scoring gives it), and at
  frame size both ways; also split into photos whose longer side is over ``--large`` px and the rest.

    .venv/bin/python benchmarks/frame_size_gap.py [--checkpoint RUN/best.pt|none] [--side 256]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from common import (
    DEFAULT_CHECKPOINT,
    DEFAULT_DATA,
    checkpoint_at,
    cpu_name,
    model_of,
    result_folder,
    run_main,
    write_results,
)
from edgeseg.data.frames import MASK_RESIZE, resize_pair
from edgeseg.data.layout import DatasetLayout
from edgeseg.metrics import confusion_matrix, iou_report
from edgeseg.training.dataset import load_sample

SCALINGS = {"centre_to_centre": MASK_RESIZE, "corner_to_corner": cv2.INTER_NEAREST}


def _scaled(mask: np.ndarray, truth: np.ndarray, flag: int) -> np.ndarray:
    return cv2.resize(mask, (truth.shape[1], truth.shape[0]), interpolation=flag)


def ceiling(layout: DatasetLayout, split: str, width: int, height: int) -> dict[str, dict]:
    """IoU of each truth mask, stretched to the model's size and back, against itself."""
    n, names = layout.classes.num_classes, layout.classes.names
    confusions = {name: np.zeros((n, n), np.int64) for name in SCALINGS}
    for sample in layout.samples(split):
        image, truth = load_sample(sample, layout, 1, 16)
        _, small = resize_pair(image, truth, width, height)
        for name, flag in SCALINGS.items():
            confusions[name] += confusion_matrix(_scaled(small, truth, flag), truth, n)
    return {name: iou_report(c, names) for name, c in confusions.items()}


def model_scores(layout: DatasetLayout, split: str, checkpoint: Path, large: int) -> dict[str, dict]:
    """The checkpoint's masks scored at model size (plain and area-weighted) and at frame size."""
    from edgeseg.training.checkpoint import load_checkpoint, model_from_checkpoint
    from edgeseg.training.evaluation import predict_mask

    state = load_checkpoint(checkpoint)
    meta, model = state["meta"], model_from_checkpoint(state)
    spec, norm, n = meta["input"], meta["normalization"], layout.classes.num_classes
    keys = ["model_size", "model_size_area_weighted", *(f"frame_size_{k}" for k in SCALINGS),
            "large_photos_model_size", "large_photos_frame_size", "other_photos_model_size",
            "other_photos_frame_size"]
    confusions = {key: np.zeros((n, n)) for key in keys}
    for sample in layout.samples(split):
        image, truth = load_sample(sample, layout, spec["channels"], spec.get("bit_depth", 16))
        _, small_truth = resize_pair(image, truth, spec["width"], spec["height"])
        pred = predict_mask(model, image, spec["height"], spec["width"], norm["mean"], norm["std"])
        at_model = confusion_matrix(pred, small_truth, n)
        at_frame = {k: confusion_matrix(_scaled(pred, truth, flag), truth, n) for k, flag in SCALINGS.items()}
        confusions["model_size"] += at_model
        confusions["model_size_area_weighted"] += at_model * truth.size / small_truth.size
        for k, c in at_frame.items():
            confusions[f"frame_size_{k}"] += c
        group = "large_photos" if max(truth.shape) > large else "other_photos"
        confusions[f"{group}_model_size"] += at_model
        confusions[f"{group}_frame_size"] += at_frame["centre_to_centre"]
    return {key: iou_report(c, layout.classes.names) for key, c in confusions.items()}


def run_name(checkpoint: Path) -> str:
    """The training result's folder a checkpoint belongs to (``edgeseg train`` writes it into run/)."""
    folder = checkpoint.resolve().parent
    return folder.parent.name if folder.name == "run" else folder.name


def table(result: dict) -> str:
    names = [name for name in next(iter(result["ceiling"].values()))["per_class_iou"] if name != "background"]
    lines = [f"Frame-size scoring, {result['split']} of {result['data']}, model input {result['side']} px "
             f"(benchmarks/frame_size_gap.py)", "",
             "| masks | scored | defect mIoU | background | " + " | ".join(names) + " |",
             "|---|---|---|---|" + "---|" * len(names)]
    rows = [("truth (a perfect model)", f"frame size, {k.replace('_', ' ')}", r)
            for k, r in result["ceiling"].items()]
    rows += [(result.get("checkpoint", ""), k.replace("_", " "), r) for k, r in result.get("model", {}).items()]
    for masks, scored, r in rows:
        iou = r["per_class_iou"]
        lines.append(f"| {masks} | {scored} | {r['defect_miou']:.3f} | {iou['background']:.4f} | "
                     + " | ".join("—" if iou[n] is None else f"{iou[n]:.3f}" for n in names) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--split", default="val")
    parser.add_argument("--side", type=int, default=256, help="the model's square input, for the ceiling")
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT),
                        help="a best.pt from edgeseg train, scored as well (default: the one the docs measured, "
                             "where a copy is there: results/CHECKPOINTS.md; none: skip)")
    parser.add_argument("--large", type=int, default=400, help="longer side over which a photo counts as large")
    parser.add_argument("--out", help="default: results/frame-size/MODEL/MACHINE-DATE-RUN (RUN: the checkpoint's "
                        "folder; MODEL: truth without one)")
    args = parser.parse_args()
    scored = args.checkpoint != "none"
    checkpoint = checkpoint_at(args.checkpoint) if scored else None  # refused before minutes of scoring
    layout = DatasetLayout.open(args.data)
    result: dict = {"cpu": cpu_name(), "data": Path(args.data).name, "split": args.split, "side": args.side,
                    "ceiling": ceiling(layout, args.split, args.side, args.side)}
    if checkpoint is not None:
        result["checkpoint"] = run_name(checkpoint)
        result["model"] = model_scores(layout, args.split, checkpoint, args.large)
    out = Path(args.out or result_folder("frame-size", model_of(Path(args.checkpoint)) if scored else "truth",
                                         result.get("checkpoint", "")))
    write_results(out, result, table(result))


if __name__ == "__main__":
    run_main(main)
