"""Segmentation metrics from a confusion matrix (numpy only, so the run side can use them)."""

from __future__ import annotations

import numpy as np

from edgeseg.data.classes import IGNORE_ID


def confusion_matrix(pred: np.ndarray, target: np.ndarray, num_classes: int,
                     ignore: int = IGNORE_ID) -> np.ndarray:
    """(num_classes, num_classes) int64 counts, rows = ground truth, columns = prediction.
    Pixels whose target is ``ignore`` are left out."""
    pred = np.asarray(pred).ravel()
    target = np.asarray(target).ravel()
    if pred.shape != target.shape:
        raise ValueError(f"prediction has {pred.size} pixels, target {target.size}")
    keep = target != ignore
    index = target[keep].astype(np.int64) * num_classes + pred[keep].astype(np.int64)
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_iou(confusion: np.ndarray) -> np.ndarray:
    """IoU per class; NaN for a class absent from both prediction and target. A stack of
    matrices (..., C, C) gives a stack of IoUs (..., C)."""
    tp = np.diagonal(confusion, axis1=-2, axis2=-1).astype(np.float64)
    union = confusion.sum(-2) + confusion.sum(-1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(confusion: np.ndarray, classes: list[int] | None = None) -> float:
    """Mean IoU over the given classes (all by default), skipping classes that never occur."""
    iou = per_class_iou(confusion)
    if classes is not None:
        iou = iou[classes]
    return float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else float("nan")


def pixel_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of pixels on which two masks agree."""
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    return float(np.count_nonzero(a == b)) / a.size


def iou_report(confusion: np.ndarray, names: list[str]) -> dict:
    """Per-class IoU by name, mIoU over all classes, and mIoU over the defect classes (all but 0)."""
    iou = per_class_iou(confusion)
    return {
        "per_class_iou": {n: (None if np.isnan(v) else round(float(v), 4)) for n, v in zip(names, iou, strict=True)},
        "miou": round(mean_iou(confusion), 4),
        "defect_miou": round(mean_iou(confusion, list(range(1, len(names)))), 4) if len(names) > 1 else None,
    }


def describe_report(report: dict) -> str:
    """One line of an ``iou_report``: mIoU, defect mIoU and every class's IoU."""
    per = ", ".join(f"{k} {('—' if v is None else f'{v:.2f}')}" for k, v in report["per_class_iou"].items())
    return f"mIoU {report['miou']:.3f} (defects {report['defect_miou']:.3f}; {per})"
