"""Benchmark: train the compact U-Net on ../shared/datasets/magnetic-tile at 256 px on this CPU.

Reports wall time, val mIoU and per-class IoU, and plots per-class IoU over epochs. Epochs are
scored under bf16 autocast where the CPU has it (to pick the best one cheaply); the kept
checkpoint is then measured again in fp32, and that is the figure reported.
Target: mean IoU over the five defect classes >= 0.50 and background >= 0.98 within
30 minutes of training.

The default config trains the compact U-Net from a stride-2 stem (``unet-lite``, with residual
blocks and a coarse classifier) on whole images; ``--config`` takes any other, for example
``magnetic_tile_unet256.yaml`` (the full-resolution U-Net on crops) or
``magnetic_tile_lraspp256.yaml`` (the lighter model).

    .venv/bin/python benchmarks/train_magnetic_tile.py [--config YAML] [--data DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from datetime import date
from pathlib import Path

import torch

from common import DEFAULT_DATA, HERE, cpu_name, gpu_name, result_folder, run_main, write_run_json
from edgeseg.data import DatasetLayout
from edgeseg.metrics import iou_report
from edgeseg.training.checkpoint import load_checkpoint, model_from_checkpoint
from edgeseg.training.config import TrainConfig
from edgeseg.training.dataset import load_split
from edgeseg.training.devices import training_device
from edgeseg.training.plots import scored
from edgeseg.training.trainer import bf16_autocast, evaluate, train


def fp32_report(checkpoint: Path, data: str) -> tuple[dict, dict]:
    """Val IoU of a checkpoint in fp32, on whole val images at its input size, and what the
    checkpoint says of its calibration."""
    state = load_checkpoint(checkpoint)
    meta = state["meta"]
    layout = DatasetLayout.open(data)
    images, masks, _ = load_split(layout, "val", meta["input"]["channels"], meta["input"]["height"], train=False,
                                  bit_depth=meta["input"].get("bit_depth", 16))
    confusion = evaluate(model_from_checkpoint(state), images, masks, meta["normalization"]["mean"],
                         meta["normalization"]["std"], layout.classes.num_classes)
    calibration = {"class_offsets": meta.get("class_offsets"), **meta.get("calibration", {}),
                   # as scored while training (under bf16 autocast where the summary's bf16_autocast says so)
                   "val_before_calibration": meta.get("metrics_before_calibration")}
    return iou_report(confusion, layout.classes.names), calibration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--config", default=str(HERE / "configs" / "magnetic_tile_unet_lite256.yaml"))
    parser.add_argument("--variant", default="", help="what sets this run apart, for the default --out")
    parser.add_argument("--out", help="default: results/train/MODEL/MACHINE-DATE[-VARIANT]-seedN")
    args = parser.parse_args()

    cfg = TrainConfig.from_yaml(args.config)
    variant = "-".join(part for part in (args.variant, f"seed{cfg.seed}") if part)
    device = training_device(cfg.device)
    args.out = args.out or str(result_folder("train", cfg.arch, variant, on_gpu=device.type == "cuda"))
    write_run_json(Path(args.out))
    cfg.data, cfg.out = args.data, str(Path(args.out) / "run")
    started = time.perf_counter()
    result = train(cfg)
    wall = time.perf_counter() - started
    best = max(scored(result.history), key=lambda h: h["val"]["miou"])
    fp32, calibration = fp32_report(result.best_checkpoint, cfg.data)
    summary = {
        "date": date.today().isoformat(), "cpu": cpu_name(), "threads": torch.get_num_threads(),
        "device": str(device), **({"gpu": gpu_name()} if device.type == "cuda" else {}),
        "bf16_autocast": bf16_autocast(cfg, device),
        "config": args.config, "epochs_run": len(result.history), "wall_minutes_total": round(wall / 60, 2),
        "wall_minutes_training": round(result.history[-1]["elapsed_s"] / 60, 2),
        "wall_minutes_training_and_calibration": round(result.wall_seconds / 60, 2),
        "best_epoch": best["epoch"], "best_val": fp32, "calibration": calibration,
        "best_val_frame_size": result.frame_size_metrics,  # each val image at its own size, as a station scores
        "targets": {"defect_miou>=0.50": fp32["defect_miou"] >= 0.50,
                    "background_iou>=0.98": fp32["per_class_iou"]["background"] >= 0.98,
                    "within_30_min": result.wall_seconds <= 30 * 60,
                    **frame_size_targets(result.frame_size_metrics)},
    }
    out = Path(args.out)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    shutil.copy(Path(cfg.out) / "iou.png", out / "iou_per_class.png")
    shutil.copy(Path(cfg.out) / "history.json", out / "history.json")
    print(json.dumps(summary, indent=2))


def frame_size_targets(frame: dict | None) -> dict:
    """The targets at frame size: defect mIoU >= 0.60 and background >= 0.985."""
    if frame is None:
        return {}
    return {"frame_size_defect_miou>=0.60": frame["defect_miou"] >= 0.60,
            "frame_size_background_iou>=0.985": frame["per_class_iou"]["background"] >= 0.985}


if __name__ == "__main__":
    run_main(main)
