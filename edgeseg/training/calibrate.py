"""Class score offsets fitted after training, folded into the classifier's bias.

Class weights and oversampling make rare defects learnable, but they also shift every defect
class's scores up by an unknown amount: the trained model calls too many pixels defects (or,
with weak weights, too few). Adding one offset per class to the logits moves each decision
boundary without retraining (the logit adjustment of Menon et al., "Long-tail learning via
logit adjustment", ICLR 2021, fitted here instead of derived). The offsets are fitted on the
*training* images by coordinate ascent on mIoU, never on validation, and become part of the
classifier's bias, so the exported graph carries them at no cost.

Fitted on images the model has learnt, where it is surer of its defects than on new ones, the
offsets overshoot, and half of each did better on new photos (docs/decisions/0010-calibration.md).
``strength`` sets that share.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from edgeseg.data.classes import IGNORE_ID
from edgeseg.data.frames import resize_pair
from edgeseg.metrics import describe_report, iou_report, mean_iou, per_class_iou
from edgeseg.training.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint, weights_on_cpu
from edgeseg.training.dataset import to_tensor_batch
from edgeseg.training.devices import CPU, bf16_context
from edgeseg.training.evaluation import evaluate

OFFSET_GRID = np.arange(-6.0, 6.01, 0.25)


@torch.no_grad()
def collect_logits(model, images, masks, mean, std, bf16: bool = False, stride: int = 4,
                   batch_size: int = 16, device: torch.device = CPU) -> tuple[np.ndarray, np.ndarray]:
    """Logits (P, C) float32 and labels (P,) uint8 of every ``stride``-th pixel per axis of the
    labelled pixels of the given samples (model in eval mode, on ``device``)."""
    model.eval()
    scores, labels = [], []
    for start in range(0, len(images), batch_size):
        x, y = to_tensor_batch(images[start:start + batch_size], masks[start:start + batch_size], mean, std)
        with bf16_context(device, bf16):
            logits = model(x.to(device).contiguous(memory_format=torch.channels_last))
        logits = logits.float()[:, :, ::stride, ::stride].permute(0, 2, 3, 1).cpu()
        y = y[:, ::stride, ::stride]
        keep = y != IGNORE_ID
        scores.append(logits[keep].numpy())
        labels.append(y[keep].numpy().astype(np.uint8))
    return np.concatenate(scores), np.concatenate(labels)


def _miou(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    # metrics.confusion_matrix would mask out unlabelled pixels that collect_logits already dropped
    counts = np.bincount(labels.astype(np.int64) * num_classes + pred, minlength=num_classes * num_classes)
    return mean_iou(counts.reshape(num_classes, num_classes))


def _offset_trials(scores: np.ndarray, labels: np.ndarray, offsets: np.ndarray, c: int,
                   grid: np.ndarray) -> np.ndarray:
    """mIoU with each ``grid`` value as class ``c``'s offset, the other offsets fixed, from one
    pass over the pixels instead of one per value (a fit took 37 s on 3.7 M pixels that way).

    A pixel goes to ``c`` for every value above its margin (the best other score minus its
    score for ``c``), so it is counted once, in the bin of the first such value, and a
    cumulative sum over the bins gives the pixels moved to ``c`` at each value."""
    n = scores.shape[1]
    others = scores + offsets
    others[:, c] = -np.inf
    other_class = np.argmax(others, axis=1)
    margin = others[np.arange(len(others)), other_class] - scores[:, c]
    first = np.searchsorted(grid, margin, side="right")  # grid[k] > margin exactly for k >= first
    pair = labels.astype(np.int64) * n + other_class
    kept = np.bincount(pair, minlength=n * n).reshape(n, n)
    moved = np.bincount(first * (n * n) + pair, minlength=(len(grid) + 1) * n * n)
    moved = np.cumsum(moved.reshape(len(grid) + 1, n, n), axis=0)[:len(grid)]
    confusion = kept - moved
    confusion[:, :, c] += moved.sum(axis=2)
    return np.nanmean(per_class_iou(confusion), axis=1)  # as mean_iou does for one matrix


def fit_class_offsets(scores: np.ndarray, labels: np.ndarray, sweeps: int = 2,
                      grid: np.ndarray = OFFSET_GRID) -> tuple[np.ndarray, float, float]:
    """Per-class logit offsets (background's stays 0) that maximise mIoU on (scores, labels),
    by coordinate ascent over ``grid`` (ascending). Returns (offsets, mIoU before, mIoU after).
    An offset moves only where it raises mIoU, so the fit never ends worse than it started."""
    num_classes = scores.shape[1]
    offsets = np.zeros(num_classes, np.float32)
    before = best = _miou(np.argmax(scores, axis=1), labels, num_classes)
    for _ in range(sweeps):
        for c in range(1, num_classes):
            for value, score in zip(grid, _offset_trials(scores, labels, offsets, c, grid), strict=True):
                if score > best + 1e-6:
                    best, offsets = float(score), offsets.copy()
                    offsets[c] = value
    return offsets, before, best


def calibration_seconds(eval_seconds: float, train_count: int, val_count: int) -> float:
    """How long ``calibrate_checkpoint`` will take, from one evaluation of the val split while
    training: a forward pass over the train images (as long per image as that evaluation), the
    val split once more, and the fit, allowed for by 30 % more (docs/decisions/0010-calibration.md)."""
    return 1.3 * eval_seconds * (train_count + val_count) / max(1, val_count)


def calibrate_checkpoint(path: Path, train: tuple[list, list], val: tuple[list, list], bf16: bool,
                         show_progress: bool = True, strength: float = 1.0, device: torch.device = CPU) -> dict:
    """Fit per-class score offsets on the train images and masks (any size: each is stretched to
    the model's input, as the runtime does), fold ``strength`` times them into the checkpoint's
    classifier bias and measure val (already at the input size) again; returns the val report.
    The offsets are chosen on train alone; val before and after is recorded, not used."""
    state = load_checkpoint(path)
    meta = state["meta"]
    if "class_offsets" in meta:  # calibrated already (a resumed run that had finished)
        return meta["metrics"]
    names = [c["name"] for c in meta["classes"]]
    mean, std = meta["normalization"]["mean"], meta["normalization"]["std"]
    size = (meta["input"]["width"], meta["input"]["height"])
    pairs = [resize_pair(image, mask, *size) for image, mask in zip(*train, strict=True)]
    model = model_from_checkpoint(state).to(device, memory_format=torch.channels_last)
    scores, labels = collect_logits(model, [p[0] for p in pairs], [p[1] for p in pairs], mean, std, bf16,
                                    device=device)
    fitted, train_before, train_after = fit_class_offsets(scores, labels)
    offsets = (fitted * strength).astype(np.float32)
    applied = [round(float(v), 3) for v in offsets]
    model.shift_class_scores(torch.from_numpy(offsets))
    report = iou_report(evaluate(model, *val, mean, std, len(names), bf16=bf16, device=device), names)
    state["meta"] = {**meta, "metrics": report, "metrics_before_calibration": meta["metrics"],
                     "class_offsets": applied,
                     "calibration": {"train_miou_before": round(train_before, 4),
                                     "train_miou_after": round(train_after, 4),  # with the offsets as fitted
                                     "strength": strength,
                                     "fitted_offsets": [round(float(v), 3) for v in fitted]}}
    state["model"] = weights_on_cpu(model.state_dict())
    save_checkpoint(path, state)
    if show_progress:
        tqdm.write(f"calibrated class offsets {applied} ({strength:g} x those fitted "
                   f"on train, mIoU {train_before:.3f} -> {train_after:.3f}); val {describe_report(report)}")
    return report


__all__ = ["collect_logits", "fit_class_offsets", "calibration_seconds", "calibrate_checkpoint"]
