"""The training loop: AdamW, warm-up then cosine schedule, evaluation every epoch, the best
checkpoint kept, resumable, seeded."""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import edgeseg
from edgeseg.data import DatasetLayout
from edgeseg.errors import CheckpointError, ConfigError
from edgeseg.metrics import describe_report, iou_report
from edgeseg.models import build_model, get_architecture
from edgeseg.progress import progress
from edgeseg.training.calibrate import calibrate_checkpoint, calibration_seconds
from edgeseg.training.checkpoint import load_checkpoint, save_checkpoint
from edgeseg.training.config import TrainConfig
from edgeseg.training.dataset import (
    TrainBatches,
    channel_stats,
    class_statistics,
    class_weights,
    infer_channels,
    load_split,
    log_class_prior,
    repeat_factors,
)
from edgeseg.training.ema import moving_average
from edgeseg.training.evaluation import evaluate
from edgeseg.training.losses import SegmentationLoss
from edgeseg.training.plots import plot_history
from edgeseg.training.prefetch import prefetch


@dataclass
class TrainResult:
    best_checkpoint: Path
    last_checkpoint: Path
    best_metrics: dict
    history: list[dict]
    wall_seconds: float


def cpu_has_bf16() -> bool:
    """AMX or AVX-512 BF16: bfloat16 matmuls and convolutions run natively."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def _seed_everything(seed: int) -> np.random.Generator:
    random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on norms and biases (it only fights their scale)."""
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _schedule(total_steps: int, warmup_steps: int, time_done=lambda: 0.0):
    """Linear warm-up, then cosine decay to zero by the last step or, with a time limit, by the
    time limit if that comes first (``time_done``: the share of it used), so that a run cut by
    the clock still ends annealed instead of at a high learning rate."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        done = max((step - warmup_steps) / max(1, total_steps - warmup_steps), time_done())
        return 0.5 * (1 + math.cos(math.pi * min(1.0, done)))
    return factor


def next_epoch_seconds(history: list[dict], halved: bool) -> float:
    """How long the next epoch will take (training and evaluation), from the epochs so far: the
    longer of the last two trained at the same size (a shared machine's pace drifts), or four
    times the last half-size epoch for the first epoch at full size (four times the pixels)."""
    ends = [0.0] + [h["elapsed_s"] for h in history]
    lengths = [(ends[i + 1] - ends[i], bool(h.get("half_size"))) for i, h in enumerate(history)]
    same = [length for length, was_halved in lengths if was_halved == halved]
    if same:
        return max(same[-2:])
    return 4 * lengths[-1][0] if lengths else 0.0


def half_size(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch at half its side: each 2x2 block of the image averaged (exactly what an area
    resize does), the mask sampled at one pixel of each block (a mask has no averages)."""
    return torch.nn.functional.avg_pool2d(x, 2), y[:, ::2, ::2]


def train(cfg: TrainConfig, resume: bool = False, show_progress: bool = True) -> TrainResult:
    cfg.validate()
    arch = get_architecture(cfg.arch)
    arch.check_options(cfg.arch_kwargs)  # before minutes of loading, not after
    if cfg.input_size % arch.stride:
        raise ConfigError(f"input size {cfg.input_size} is not a multiple of {arch.name}'s stride {arch.stride}")
    if cfg.half_size_share and (cfg.crop_size or cfg.input_size) % (2 * arch.stride):
        raise ConfigError(f"half of {cfg.crop_size or cfg.input_size} px is not a multiple of {arch.name}'s "
                          f"stride {arch.stride}", fix="set half_size_share: 0, or train on a size that halves")
    cores = os.cpu_count() or 1
    threads = cfg.threads or cores
    torch.set_num_threads(threads)
    # Augmenting the next batch in a thread pays only on a core torch leaves free: beside two
    # torch threads on two cores it stalls them at every barrier (0.41 s per lraspp step at 256 px
    # against 0.35 s with the batch made in line, where the batch itself costs 0.025 s).
    make_ahead = prefetch if threads < cores else iter
    rng = _seed_everything(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    layout = DatasetLayout.open(cfg.data)
    table = layout.classes
    num_classes = table.num_classes
    channels = cfg.channels or infer_channels(layout, layout.split_stems("train"))
    size = cfg.input_size

    train_images, train_masks = load_split(layout, "train", channels, size, train=True)
    val_images, val_masks = load_split(layout, "val", channels, size, train=False)
    mean, std = channel_stats(train_images, channels)
    pixels, present = class_statistics(train_masks, num_classes)
    weights = class_weights(pixels, cfg.class_weights, cfg.max_class_weight)
    factors = repeat_factors(present, cfg.oversample, cfg.defect_free_fraction)
    batches = TrainBatches(train_images, train_masks, size, cfg.batch_size, factors, cfg.augment, mean, std,
                           cfg.crop_size)

    model = build_model(cfg.arch, channels, num_classes, dropout=cfg.dropout, **cfg.arch_kwargs)
    model.set_class_prior(torch.from_numpy(log_class_prior(pixels)))
    # NHWC activations: oneDNN's convolutions run 1.3-1.4x faster on them here (fp32 and bf16)
    model = model.to(memory_format=torch.channels_last)
    criterion = SegmentationLoss(cfg.loss, torch.from_numpy(weights) if weights is not None else None,
                                 compiled=cfg.compile_loss)
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr)
    steps = batches.steps_per_epoch()
    clock = {"started": time.perf_counter()}  # set again below, after a resume's elapsed time is known

    def time_done() -> float:
        return (time.perf_counter() - clock["started"]) / (cfg.max_minutes * 60) if cfg.max_minutes else 0.0

    def trains_halved(epoch: int) -> bool:
        """Whether an epoch starting now runs on halved batches (the first half_size_share of the run)."""
        return (time_done() if cfg.max_minutes else epoch / cfg.epochs) < cfg.half_size_share

    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _schedule(cfg.epochs * steps, max(1, round(cfg.warmup_epochs * steps)), time_done))
    # The moving average smooths the step-to-step swings of small-batch training on rare classes;
    # it averages the BatchNorm statistics too, so the averaged model is evaluated and kept as is.
    ema = moving_average(model, cfg.ema_decay) if cfg.ema_decay else None
    use_bf16 = cfg.bf16 == "on" or (cfg.bf16 == "auto" and cpu_has_bf16())

    meta = {
        "arch": cfg.arch, "arch_kwargs": dict(cfg.arch_kwargs), "dropout": cfg.dropout,
        "classes": table.to_list(),
        "input": {"height": size, "width": size, "channels": channels,
                  "color_order": "gray" if channels == 1 else "bgr", "resize": "stretch-linear"},
        "normalization": {"mean": mean, "std": std},
        "data": str(Path(cfg.data).resolve()),
        "edgeseg_version": edgeseg.__version__,
        "train_config": json.loads(json.dumps(cfg.to_dict())),
    }
    history: list[dict] = []
    best_miou, start_epoch, elapsed_before = -1.0, 0, 0.0
    last_path, best_path = out / "last.pt", out / "best.pt"
    if resume:
        if not last_path.is_file():
            raise CheckpointError("nothing to resume", last_path, "train without --resume first")
        state = load_checkpoint(last_path)
        if state["meta"]["arch"] != cfg.arch or len(state["meta"]["classes"]) != num_classes:
            raise CheckpointError("the checkpoint was trained with another architecture or class table",
                                  last_path, "resume with the same settings, or train into a new --out")
        model.load_state_dict(state["model"])
        if ema is not None:
            if "ema" not in state:
                raise CheckpointError("the checkpoint has no moving average of the weights", last_path,
                                      "resume with the same ema_decay, or train into a new --out")
            ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, best_miou = state["history"], state["best_miou"]
        start_epoch, elapsed_before = state["epoch"], state.get("elapsed", 0.0)
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])

    started = clock["started"] = time.perf_counter() - elapsed_before
    names = table.names
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        losses = []
        halved = trains_halved(epoch)
        bar = progress(make_ahead(batches.epoch(rng)), total=steps, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                       unit="batch", disable=not show_progress, leave=False)
        for x, y in bar:
            if halved:
                x, y = half_size(x, y)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
                logits = model(x.contiguous(memory_format=torch.channels_last))
            loss = criterion(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update_parameters(model)
            losses.append(loss.item())
            # drawn with the bar's next update, at its own pace (a refresh per step floods a log)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", lr=f"{scheduler.get_last_lr()[0]:.1e}",
                            best_miou=f"{max(best_miou, 0):.3f}", refresh=False)
        kept = ema.module if ema is not None else model
        evaluation_started = time.perf_counter()
        report = iou_report(evaluate(kept, val_images, val_masks, mean, std, num_classes, bf16=use_bf16), names)
        evaluated = time.perf_counter()
        elapsed = evaluated - started
        history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val": report,
                        "elapsed_s": round(elapsed, 1), "eval_s": round(evaluated - evaluation_started, 2),
                        **({"half_size": True} if halved else {})})
        improved = report["miou"] > best_miou
        if improved:
            best_miou = report["miou"]
            save_checkpoint(best_path, {"meta": {**meta, "metrics": report, "epoch": epoch + 1},
                                        "model": kept.state_dict()})
        save_checkpoint(last_path, {
            "meta": {**meta, "metrics": report, "epoch": epoch + 1}, "model": model.state_dict(),
            **({"ema": ema.state_dict()} if ema is not None else {}),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "epoch": epoch + 1,
            "history": history, "best_miou": best_miou, "elapsed": elapsed,
            "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state()})
        if show_progress:
            tqdm.write(f"epoch {epoch + 1}/{cfg.epochs}  loss {np.mean(losses):.3f}  {describe_report(report)}"
                       f"{'  * best' if improved else ''}  [{elapsed / 60:.1f} min{', half size' if halved else ''}]")
        (out / "history.json").write_text(json.dumps(history, indent=1))
        # Stop before an epoch that would end past the limit, with the calibration after it, not
        # after that epoch: the limit then bounds the whole run (the learning rate is nearly
        # annealed by then).
        if cfg.max_minutes is not None:
            expected = next_epoch_seconds(history, trains_halved(epoch + 1))
            calibration = (calibration_seconds(max(h.get("eval_s", 0.0) for h in history[-2:]),
                                               len(train_images), len(val_images)) if cfg.calibrate else 0.0)
            if elapsed + expected + calibration > cfg.max_minutes * 60:
                if show_progress:
                    tqdm.write(f"stopping at {elapsed / 60:.1f} min: another epoch ({expected / 60:.1f} min)"
                               + (f" and the calibration ({calibration / 60:.1f} min)" if cfg.calibrate else "")
                               + f" would end past the {cfg.max_minutes} min limit")
                break

    plot_history(history, names, [tuple(c["color"]) for c in meta["classes"]], out / "iou.png")
    best = max(history, key=lambda h: h["val"]["miou"])["val"]
    if cfg.calibrate:
        best = calibrate_checkpoint(best_path, (train_images, train_masks), (val_images, val_masks), use_bf16,
                                    show_progress, cfg.calibration_strength)
    return TrainResult(best_path, last_path, best, history, time.perf_counter() - started)
