"""Training plots a person reads: per-class IoU and loss over epochs."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
from PIL import Image

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def scored(history: list[dict]) -> list[dict]:
    """The epochs of a training history that were scored on val (reduced ones may not be)."""
    return [epoch for epoch in history if "val" in epoch]


def plot_history(history: list[dict], class_names: list[str], colors: list[tuple], path: Path,
                 title: str = "validation IoU per class") -> None:
    """IoU per class over the epochs scored on val, the loss over all."""
    scores = scored(history)
    epochs = [h["epoch"] for h in scores]
    fig, (ax_iou, ax_loss) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [2, 1]})
    for name, color in zip(class_names, colors, strict=True):
        values = [h["val"]["per_class_iou"].get(name) for h in scores]
        values = [float("nan") if v is None else v for v in values]
        rgb = tuple(c / 255 for c in color) if any(color) else (0.3, 0.3, 0.3)
        ax_iou.plot(epochs, values, marker=".", color=rgb, label=name)
    ax_iou.plot(epochs, [h["val"]["miou"] for h in scores], "k--", lw=2, label="mIoU (all)")
    ax_iou.plot(epochs, [h["val"]["defect_miou"] for h in scores], "k:", lw=2, label="mIoU (defects)")
    ax_iou.set(xlabel="epoch", ylabel="IoU", ylim=(0, 1), title=title)
    ax_iou.grid(alpha=0.3)
    ax_iou.legend(fontsize=8, loc="lower right", ncol=2)
    ax_loss.plot([h["epoch"] for h in history], [h["train_loss"] for h in history], color="tab:blue")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="training loss")
    ax_loss.grid(alpha=0.3)
    fig.tight_layout()
    save_small_png(fig, path)
    plt.close(fig)


def save_small_png(fig, path: Path, colors: int = 64) -> None:
    """The figure as a PNG of a few dozen colours: line plots lose nothing a reader sees, and the
    file is a third of the size (plots are tracked beside the results)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=colors).save(path, optimize=True)
