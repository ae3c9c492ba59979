"""The training loop: AdamW, warm-up then cosine schedule, evaluation every epoch, the best
checkpoint kept, resumable, seeded."""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
from edgeseg.training.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint, weights_on_cpu
from edgeseg.training.config import TrainConfig
from edgeseg.training.dataset import (
    TrainBatches,
    area_factors,
    channel_stats,
    class_statistics,
    class_weights,
    infer_channels,
    input_shape,
    load_split,
    log_class_prior,
    repeat_factors,
)
from edgeseg.training.devices import (
    CPU,
    bf16_context,
    has_native_bf16,
    restore_rng_states,
    rng_states,
    training_device,
    wants_cuda,
)
from edgeseg.training.distributed import Ranks, from_main, gathered, join, leave, unwrapped, wait_for_all, wrap
from edgeseg.training.ema import moving_average
from edgeseg.training.evaluation import evaluate, evaluate_frame_size
from edgeseg.training.losses import SegmentationLoss
from edgeseg.training.plots import plot_history, scored
from edgeseg.training.prefetch import prefetch
from edgeseg.training.progressive import reduced_shape


@dataclass
class TrainResult:
    best_checkpoint: Path
    last_checkpoint: Path
    best_metrics: dict
    history: list[dict]
    wall_seconds: float
    frame_size_metrics: dict | None = None  # the kept model on val at each image's own size


POSTFIX_STEPS = 20  # the progress bar's loss: the mean of the last this many steps


def bf16_autocast(cfg: TrainConfig, device: torch.device = CPU) -> bool:
    """Whether the config's forward passes run under bf16 autocast on ``device`` (this CPU by default)."""
    return cfg.bf16 == "on" or (cfg.bf16 == "auto" and has_native_bf16(device))


def optimizer_step(model: torch.nn.Module, criterion: Callable, optimizer: torch.optim.Optimizer,
                   x: torch.Tensor, y: torch.Tensor, bf16: bool, loss_downscale: int = 1) -> torch.Tensor:
    """One training step on a batch (on the model's device): forward (channels-last; class scores
    at 1/``loss_downscale`` of the side), loss, backward, optimiser; the loss."""
    output_size = (x.shape[-2] // loss_downscale, x.shape[-1] // loss_downscale) if loss_downscale > 1 else None
    with bf16_context(x.device, bf16):
        logits = model(x.contiguous(memory_format=torch.channels_last), output_size=output_size)
    loss = criterion(logits, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def history_text(history: list[dict]) -> str:
    """history.json: one epoch per line (compact, since the benchmarks keep it beside their results)."""
    return "[\n" + ",\n".join(json.dumps(epoch, separators=(",", ":")) for epoch in history) + "\n]\n"


def _seed_everything(seed: int) -> None:
    """Python's and torch's generators (dropout); the batches draw from (seed, epoch) themselves."""
    random.seed(seed)
    torch.manual_seed(seed)


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


def epoch_scale(epoch: dict) -> float:
    """The share of the side an epoch of the history trained at (1: full size; half_size: older runs')."""
    return epoch.get("reduced_size") or (0.5 if epoch.get("half_size") else 1.0)


def next_epoch_seconds(history: list[dict], reduced: bool) -> float:
    """How long the next epoch will take (training and evaluation), from the epochs so far: the
    longer of the last two trained at the same size (a shared machine's pace drifts), or, for the
    first epoch at full size, the last reduced one's time over its scale squared (its pixels)."""
    ends = [0.0] + [h["elapsed_s"] for h in history]
    lengths = [(ends[i + 1] - ends[i], epoch_scale(h)) for i, h in enumerate(history)]
    same = [length for length, scale in lengths if (scale < 1) == reduced]
    if same:
        return max(same[-2:])
    return lengths[-1][0] / lengths[-1][1] ** 2 if lengths else 0.0


class RunClock:
    """The run's wall clock: seconds since it started, counting what a resumed run had used
    before, and the share of ``max_minutes`` gone (0 without a limit)."""

    def __init__(self, max_minutes: float | None):
        self.max_minutes = max_minutes
        self.started = time.perf_counter()
        self.agreed_share: float | None = None  # a distributed run's share used, as rank 0 saw it at the epoch's start

    def resume_from(self, elapsed_before: float) -> None:
        self.started = time.perf_counter() - elapsed_before

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def share_used(self) -> float:
        if self.agreed_share is not None:  # every rank's learning rate must follow the same clock
            return self.agreed_share
        return self.elapsed() / (self.max_minutes * 60) if self.max_minutes else 0.0


@dataclass
class _Data:
    train_images: np.ndarray
    train_masks: np.ndarray
    val_images: np.ndarray
    val_masks: np.ndarray
    mean: list[float]
    std: list[float]
    pixels: np.ndarray
    batches: TrainBatches
    bit_depth: int  # 16-bit images were scaled by it (8: the data is 8-bit); recorded in the checkpoint
    shape: tuple[int, int]  # the model's input (height, width)


@dataclass
class _Run:
    """What one training run holds while it runs: its settings, data, model and the optimiser's
    state, and the progress so far."""

    cfg: TrainConfig
    out: Path
    names: list[str]
    data: _Data
    model: torch.nn.Module
    criterion: SegmentationLoss
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    ema: torch.nn.Module | None
    use_bf16: bool
    device: torch.device
    meta: dict
    clock: RunClock
    make_ahead: Callable
    ranks: Ranks = field(default_factory=Ranks)  # this process's place in a distributed run
    history: list[dict] = field(default_factory=list)
    best_miou: float = -1.0
    start_epoch: int = 0
    elapsed: float = 0.0  # seconds since the run started, at the end of the last epoch (its scoring included)

    @property
    def best_path(self) -> Path:
        return self.out / "best.pt"

    @property
    def last_path(self) -> Path:
        return self.out / "last.pt"

    @property
    def stride(self) -> int:
        return get_architecture(self.cfg.arch).stride

    def kept_model(self) -> torch.nn.Module:
        return self.ema.module if self.ema is not None else unwrapped(self.model)

    def trains_reduced(self, epoch: int) -> bool:
        """Whether an epoch starting now runs on reduced batches (the first reduced_size_share of the run)."""
        cfg = self.cfg
        return (self.clock.share_used() if cfg.max_minutes else epoch / cfg.epochs) < cfg.reduced_size_share


def _check_config(cfg: TrainConfig) -> None:
    """What can be refused before minutes of loading, not after."""
    cfg.validate()
    arch = get_architecture(cfg.arch)
    arch.check_options(cfg.arch_kwargs)
    for side in {cfg.input_size, cfg.input_width or cfg.input_size, cfg.input_height or cfg.input_size}:
        if side % arch.stride:
            raise ConfigError(f"input size {side} is not a multiple of {arch.name}'s stride {arch.stride}")


def load_data(cfg: TrainConfig, layout: DatasetLayout, channels: int) -> _Data:
    """The train and val splits at the model's input, their statistics and the epoch's batch maker."""
    train_images, train_masks, depth = load_split(layout, "train", channels, cfg.input_size, train=True)
    size = _input_shape(cfg, [image.shape for image in train_images])
    val_images, val_masks, _ = load_split(layout, "val", channels, size, train=False, bit_depth=depth)
    mean, std = channel_stats(train_images, channels)
    pixels, present = class_statistics(train_masks, layout.classes.num_classes)
    factors = repeat_factors(present, cfg.oversample, cfg.defect_free_fraction)
    if cfg.sample_by_area:  # photos over twice the input side count at the size they were loaded
        factors = factors * area_factors(train_images)
    batches = TrainBatches(train_images, train_masks, size, cfg.batch_size, factors, cfg.augment, mean, std,
                           cfg.crop_size)
    return _Data(train_images, train_masks, val_images, val_masks, mean, std, pixels, batches, depth, size)


def _input_shape(cfg: TrainConfig, photo_shapes: list[tuple[int, ...]]) -> tuple[int, int]:
    """(height, width): as given, else from input_size and the photos' aspect."""
    if cfg.input_width and cfg.input_height:
        return cfg.input_height, cfg.input_width
    return input_shape(cfg.input_size, photo_shapes, get_architecture(cfg.arch).stride, cfg.keep_aspect)


def _checkpoint_meta(cfg: TrainConfig, layout: DatasetLayout, channels: int, data: _Data) -> dict:
    height, width = data.shape
    return {
        "arch": cfg.arch, "arch_kwargs": dict(cfg.arch_kwargs), "dropout": cfg.dropout,
        "classes": layout.classes.to_list(),
        "input": {"height": height, "width": width, "channels": channels,
                  "color_order": "gray" if channels == 1 else "bgr", "resize": "stretch-linear",
                  "bit_depth": data.bit_depth},
        "normalization": {"mean": data.mean, "std": data.std},
        "data": str(Path(cfg.data).resolve()),
        "edgeseg_version": edgeseg.__version__,
        "train_config": json.loads(json.dumps(cfg.to_dict())),
    }


def _prepare(cfg: TrainConfig) -> _Run:
    ranks = join(wants_cuda(cfg.device))
    device = training_device(cfg.device, ranks.local_rank, ranks.distributed)
    cores = os.cpu_count() or 1
    threads = cfg.threads or max(1, cores // ranks.local_world)  # the cores shared by the ranks on this machine
    torch.set_num_threads(threads)
    # A batch made in a background thread pays only on a core torch leaves free (docs/decisions/0008),
    # or beside a GPU
    make_ahead = prefetch if threads * ranks.local_world < cores or device.type == "cuda" else iter
    _seed_everything(cfg.seed)
    layout = DatasetLayout.open(cfg.data)
    layout.require_paired()  # what data check calls an error is refused, not left out silently
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)  # once the data set is known to be usable: no empty run folders
    num_classes = layout.classes.num_classes
    channels = cfg.channels or infer_channels(layout, layout.split_stems("train"))
    data = load_data(cfg, layout, channels)

    model = build_model(cfg.arch, channels, num_classes, dropout=cfg.dropout, **cfg.arch_kwargs)
    model.set_class_prior(torch.from_numpy(log_class_prior(data.pixels)))
    model = model.to(device, memory_format=torch.channels_last)  # NHWC: faster convolutions (docs/decisions/0009)
    ema = moving_average(model, cfg.ema_decay) if cfg.ema_decay else None
    model = wrap(model, ranks, device)
    weights = class_weights(data.pixels, cfg.class_weights, cfg.max_class_weight)
    criterion = SegmentationLoss(cfg.loss, torch.from_numpy(weights) if weights is not None else None,
                                 compiled=cfg.compile_loss).to(device)
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr)
    steps = data.batches.steps_per_epoch()
    clock = RunClock(cfg.max_minutes)  # restarted before the first epoch, once a resume's time is known
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _schedule(cfg.epochs * steps, max(1, round(cfg.warmup_epochs * steps)), clock.share_used))
    # The moving average (made above, of the model itself) smooths the step-to-step swings of
    # small-batch training on rare classes; it averages the BatchNorm statistics too, so the
    # averaged model is evaluated and kept as is.
    use_bf16 = bf16_autocast(cfg, device)
    return _Run(cfg, out, layout.classes.names, data, model, criterion, optimizer, scheduler, ema, use_bf16, device,
                _checkpoint_meta(cfg, layout, channels, data), clock, make_ahead, ranks)


def _resume(run: _Run) -> float:
    """Load last.pt into the run; returns the seconds it had already trained."""
    path = run.last_path
    if not path.is_file():
        raise CheckpointError("nothing to resume", path, "train without --resume first")
    state = load_checkpoint(path)
    if state["meta"]["arch"] != run.cfg.arch or len(state["meta"]["classes"]) != len(run.names):
        raise CheckpointError("the checkpoint was trained with another architecture or class table",
                              path, "resume with the same settings, or train into a new --out")
    unwrapped(run.model).load_state_dict(state["model"])
    if run.ema is not None:
        if "ema" not in state:
            raise CheckpointError("the checkpoint has no moving average of the weights", path,
                                  "resume with the same ema_decay, or train into a new --out")
        run.ema.load_state_dict(state["ema"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.history, run.best_miou, run.start_epoch = state["history"], state["best_miou"], state["epoch"]
    restore_rng_states(state, run.device)
    return state.get("elapsed", 0.0)


def _train_one_epoch(run: _Run, epoch: int, reduced: bool, show_progress: bool) -> list[float]:
    cfg, batches, ranks = run.cfg, run.data.batches, run.ranks
    losses: list[torch.Tensor] = []  # read back every POSTFIX_STEPS: a read per step would stall a GPU
    run.model.train()
    size = reduced_shape(*batches.size, cfg.reduced_size_scale, run.stride) if reduced else None
    bar = progress(run.make_ahead(batches.epoch(epoch, cfg.seed, ranks.rank, ranks.world, size)),
                   total=batches.steps_per_epoch(), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
                   disable=not (show_progress and ranks.main), leave=False)
    for step, (x, y) in enumerate(bar):
        x, y = x.to(run.device, non_blocking=True), y.to(run.device, non_blocking=True)
        loss = optimizer_step(run.model, run.criterion, run.optimizer, x, y, run.use_bf16, run.cfg.loss_downscale)
        run.scheduler.step()
        if run.ema is not None:
            run.ema.update_parameters(unwrapped(run.model))
        losses.append(loss.detach())
        if step % POSTFIX_STEPS == 0:  # drawn with the bar's next update (a refresh per step floods a log)
            bar.set_postfix(loss=f"{torch.stack(losses[-POSTFIX_STEPS:]).mean().item():.3f}",
                            lr=f"{run.scheduler.get_last_lr()[0]:.1e}",
                            best_miou=f"{max(run.best_miou, 0):.3f}", refresh=False)
    return torch.stack(losses).float().cpu().tolist() if losses else []


def _record_epoch(run: _Run, epoch: int, losses: list[float], reduced: bool, seen: list[int]) -> dict:
    """Append the epoch, not yet scored, to the history (with the samples every rank was given, as
    a count and a digest); returns its entry."""
    run.elapsed = time.perf_counter() - run.clock.started
    digest = hashlib.sha256(np.sort(np.array(seen, np.int64)).tobytes()).hexdigest()[:16]
    size = {"reduced_size": run.cfg.reduced_size_scale} if reduced else {}
    entry = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "samples": len(seen),
             "samples_digest": digest, "elapsed_s": round(run.elapsed, 1), **size}
    run.history.append(entry)
    return entry


def _score_epoch(run: _Run, entry: dict) -> dict:
    """Score the kept model on val into the epoch's history entry; returns its report."""
    d = run.data
    evaluation_started = time.perf_counter()
    confusion = evaluate(run.kept_model(), d.val_images, d.val_masks, d.mean, d.std, len(run.names),
                         bf16=run.use_bf16, device=run.device)
    report = iou_report(confusion, run.names)
    evaluated = time.perf_counter()
    run.elapsed = evaluated - run.clock.started
    entry.update(val=report, elapsed_s=round(run.elapsed, 1), eval_s=round(evaluated - evaluation_started, 2))
    return report


def _skips_scoring(run: _Run, epoch: int, reduced: bool) -> bool:
    """Whether a reduced epoch goes unscored (evaluate_reduced_epochs false): never the run's first
    scored epoch (its time is what later scores are expected to take) nor its last epoch."""
    return (reduced and not run.cfg.evaluate_reduced_epochs and epoch + 1 < run.cfg.epochs
            and bool(scored(run.history)))


def _save(run: _Run, epoch: int, report: dict | None) -> bool:
    """best.pt when the epoch was scored and improved on the best, last.pt always (with what
    resuming needs)."""
    meta = {**run.meta, "epoch": epoch + 1, **({"metrics": report} if report else {})}
    improved = report is not None and report["miou"] > run.best_miou
    if improved:
        run.best_miou = report["miou"]
        save_checkpoint(run.best_path, {"meta": meta, "model": weights_on_cpu(run.kept_model().state_dict())})
    save_checkpoint(run.last_path, {
        "meta": meta, "model": weights_on_cpu(unwrapped(run.model).state_dict()),
        **({"ema": run.ema.state_dict()} if run.ema is not None else {}),
        "optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(), "epoch": epoch + 1,
        "history": run.history, "best_miou": run.best_miou, "elapsed": run.elapsed, **rng_states(run.device)})
    (run.out / "history.json").write_text(history_text(run.history))
    return improved


def _out_of_time(run: _Run, epoch: int, show_progress: bool, unscored: bool = False) -> bool:
    """Whether the next epoch, and the calibration after it, would end past max_minutes: the run
    stops before such an epoch, not after it, so the limit bounds the whole run. ``unscored``: the
    epoch just trained is not scored yet, and would be if the run stopped after it."""
    cfg = run.cfg
    if cfg.max_minutes is None:
        return False
    evaluations = [h["eval_s"] for h in scored(run.history)[-2:]]
    eval_seconds = max(evaluations, default=0.0)
    elapsed = run.elapsed + (eval_seconds if unscored else 0.0)
    next_reduced = run.trains_reduced(epoch + 1)
    expected = next_epoch_seconds(run.history, next_reduced)
    if not next_reduced and "val" not in run.history[-1]:  # the last epochs' lengths hold no scoring
        expected += eval_seconds
    calibration = (calibration_seconds(eval_seconds, len(run.data.train_images), len(run.data.val_images))
                   if cfg.calibrate else 0.0)
    if elapsed + expected + calibration <= cfg.max_minutes * 60:
        return False
    if show_progress:
        tqdm.write(f"stopping at {elapsed / 60:.1f} min: another epoch ({expected / 60:.1f} min)"
                   + (f" and the calibration ({calibration / 60:.1f} min)" if cfg.calibrate else "")
                   + f" would end past the {cfg.max_minutes} min limit")
    return True


def _report_epoch(run: _Run, epoch: int, losses: list[float], report: dict | None, improved: bool,
                  reduced: bool) -> None:
    size = f", at {run.cfg.reduced_size_scale:g} of the side" if reduced else ""
    scores = describe_report(report) if report else "not scored"
    tqdm.write(f"epoch {epoch + 1}/{run.cfg.epochs}  loss {np.mean(losses):.3f}  {scores}"
               f"{'  * best' if improved else ''}  [{run.elapsed / 60:.1f} min{size}]")


def train(cfg: TrainConfig, resume: bool = False, show_progress: bool = True) -> TrainResult:
    """Train as ``cfg`` says; under torchrun, as one rank of a distributed run (distributed.py),
    where rank 0 returns the result and the other ranks a result without history."""
    _check_config(cfg)
    run = _prepare(cfg)
    try:
        run.clock.resume_from(_resume(run) if resume else 0.0)
        for epoch in range(run.start_epoch, cfg.epochs):
            if from_main(run.ranks, _epoch(run, epoch, show_progress)):
                break
        wait_for_all(run.ranks)
        if not run.ranks.main:
            return TrainResult(run.best_path, run.last_path, {}, [], run.clock.elapsed())
        return _finish(run, show_progress)
    finally:
        leave(run.ranks)


def _epoch(run: _Run, epoch: int, show_progress: bool) -> bool:
    """Train one epoch; on rank 0 evaluate and save it. True when the run is out of time."""
    ranks = run.ranks
    if ranks.distributed:  # every rank follows rank 0's clock (learning rate, reduced size)
        run.clock.agreed_share = None
        run.clock.agreed_share = from_main(ranks, run.clock.share_used())
    reduced = run.trains_reduced(epoch)
    losses = [loss for part in gathered(ranks, _train_one_epoch(run, epoch, reduced, show_progress)) for loss in part]
    seen = [index for part in gathered(ranks, run.data.batches.seen) for index in part]
    if not ranks.main:
        return False
    entry = _record_epoch(run, epoch, losses, reduced, seen)
    if _skips_scoring(run, epoch, reduced) and not _out_of_time(run, epoch, False, unscored=True):
        _save(run, epoch, None)
        if show_progress:
            _report_epoch(run, epoch, losses, None, False, reduced)
        return False
    report = _score_epoch(run, entry)
    improved = _save(run, epoch, report)
    if show_progress:
        _report_epoch(run, epoch, losses, report, improved, reduced)
    return _out_of_time(run, epoch, show_progress)


def _finish(run: _Run, show_progress: bool) -> TrainResult:
    """The plot, the calibration and the frame-size score of the kept checkpoint (rank 0)."""
    cfg = run.cfg
    plot_history(run.history, run.names, [tuple(c["color"]) for c in run.meta["classes"]], run.out / "iou.png")
    best = max(scored(run.history), key=lambda h: h["val"]["miou"])["val"]
    if cfg.calibrate:
        d = run.data
        best = calibrate_checkpoint(run.best_path, (d.train_images, d.train_masks), (d.val_images, d.val_masks),
                                    run.use_bf16, show_progress, cfg.calibration_strength, run.device)
    frame_size = _score_at_frame_size(run, show_progress)
    return TrainResult(run.best_path, run.last_path, best, run.history, run.clock.elapsed(), frame_size)


def _score_at_frame_size(run: _Run, show_progress: bool) -> dict:
    """The kept checkpoint on val at each image's own size (as a station writes masks), recorded
    in it beside the model-size figures."""
    state = load_checkpoint(run.best_path)
    meta = state["meta"]
    model = model_from_checkpoint(state).to(run.device, memory_format=torch.channels_last)
    spec, norm = meta["input"], meta["normalization"]
    confusion = evaluate_frame_size(model, DatasetLayout.open(run.cfg.data), "val", spec,
                                    norm["mean"], norm["std"], len(run.names), run.device)
    report = iou_report(confusion, run.names)
    state["meta"] = {**meta, "metrics_frame_size": report}
    save_checkpoint(run.best_path, state)
    if show_progress:
        tqdm.write(f"kept model on val at each image's own size: {describe_report(report)}")
    return report
