"""The sweep of ``edgeseg verify`` as a plot: escapes against false rejects for every setting of
min_region_area and confidence_threshold (matplotlib, from the build extra)."""

from __future__ import annotations

from pathlib import Path

from edgeseg.engines.part_accuracy import pareto
from edgeseg.errors import ConfigError


def plot_sweep(rows: list[dict], parts: dict, choice: dict | None, path: Path, max_escape_rate: float) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("--plot needs matplotlib", fix="pip install matplotlib (or edgeseg[build])") from None
    fig, ax = plt.subplots(figsize=(7, 5))
    thresholds = sorted({r["confidence_threshold"] for r in rows}, key=lambda t: -1 if t is None else t)
    for threshold in thresholds:
        line = [r for r in rows if r["confidence_threshold"] == threshold]
        ax.plot([100 * r["false_reject_rate"] for r in line], [100 * r["escape_rate"] for r in line], ".-",
                alpha=0.7, label=f"confidence ≥ {threshold}" if threshold is not None else "no confidence threshold")
    front = pareto(rows)
    ax.plot([100 * r["false_reject_rate"] for r in front], [100 * r["escape_rate"] for r in front], "k--", lw=1,
            label="no setting beats these")
    ax.plot([100 * parts["false_reject_rate"]], [100 * parts["escape_rate"]], "k*", ms=14, label="the rules given")
    if choice is not None:
        ax.plot([100 * choice["false_reject_rate"]], [100 * choice["escape_rate"]], "o", mfc="none", mec="red", ms=14,
                label=f"suggested: min area {choice['min_region_area']}, confidence {choice['confidence_threshold']}")
    ax.axhline(100 * max_escape_rate, color="red", lw=0.8, ls=":")
    ax.set(xlabel=f"false rejects, % of {parts['good']} good parts",
           ylabel=f"escapes, % of {parts['defective']} defective parts",
           title="operating points: min_region_area (along each line) x confidence threshold")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
