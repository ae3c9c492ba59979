"""Benchmark: the time of one training step (forward, loss, backward, AdamW) of each config's
model on this CPU (or a GPU: ``--device cuda``), the configs interleaved round by round so that a
noisy machine slows them alike.

Random images and labels at each config's input size and batch, channels-last, under bf16
autocast where the config asks for it (``auto``: where the device has native bf16), the loss as
training computes it (fused where a C++ compiler is found). Reports the median step and its ratio
to the first config's; no data loading, no evaluation (an epoch adds both).

    .venv/bin/python benchmarks/train_step.py --config A.yaml B.yaml [--rounds 10] [--steps 3] [--device cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from common import cpu_name, gpu_name, result_folder, run_main, write_results
from edgeseg.models import build_model
from edgeseg.models.complexity import count_gflops, count_parameters
from edgeseg.training.config import TrainConfig
from edgeseg.training.devices import training_device
from edgeseg.training.losses import SegmentationLoss
from edgeseg.training.trainer import bf16_autocast, optimizer_step

CLASSES = 6  # magnetic-tile's


class Stepper:
    """One config's model, loss and optimiser, and a step on a fixed random batch."""

    def __init__(self, cfg: TrainConfig, device: torch.device, channels: int = 1):
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg.arch, channels, CLASSES, dropout=cfg.dropout, **cfg.arch_kwargs)
        self.model = self.model.to(device, memory_format=torch.channels_last).train()
        self.loss = SegmentationLoss(cfg.loss, torch.ones(CLASSES), compiled=cfg.compile_loss).to(device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        side = cfg.input_size
        self.x = torch.randn(cfg.batch_size, channels, side, side, device=device)
        self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.y = torch.randint(0, CLASSES, (cfg.batch_size, side, side), device=device)
        self.bf16 = bf16_autocast(cfg, device)
        self.loss_downscale = cfg.loss_downscale
        self.device = device

    def step(self) -> float:
        started = time.perf_counter()
        optimizer_step(self.model, self.loss, self.optimizer, self.x, self.y, self.bf16, self.loss_downscale)
        if self.device.type == "cuda":  # the GPU's queue drained: the step's own time, not its launch
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - started


def measure(steppers: dict[str, Stepper], rounds: int, steps: int) -> dict[str, list[float]]:
    """Each config's step times; the first round warms up (and compiles the loss) and is dropped."""
    times: dict[str, list[float]] = {name: [] for name in steppers}
    for round_ in range(rounds + 1):
        for name, stepper in steppers.items():
            measured = [stepper.step() for _ in range(steps)]
            if round_:
                times[name].extend(measured)
    return times


def report(configs: list[str], steppers: dict[str, Stepper], times: dict[str, list[float]]) -> dict:
    first = statistics.median(times[configs[0]])
    rows = []
    for name in configs:
        model, median = steppers[name].model, statistics.median(times[name])
        rows.append({"config": name, "median_step_ms": round(median * 1000, 1),
                     "ratio_to_first": round(median / first, 3), "steps": len(times[name]),
                     "params": count_parameters(model), "gflops_256": round(count_gflops(model, 1, 256), 3),
                     "bf16_autocast": steppers[name].bf16, "batch": steppers[name].x.shape[0]})
    device = next(iter(steppers.values())).device
    return {"cpu": cpu_name(), "threads": torch.get_num_threads(), "device": str(device),
            **({"gpu": gpu_name()} if device.type == "cuda" else {}), "rows": rows}


def table(result: dict) -> str:
    where = result.get("gpu") or f"{result['cpu']}, {result['threads']} threads"
    lines = [f"Training step, {where} (benchmarks/train_step.py)", "",
             "| config | median step (ms) | ratio | params | GFLOPs at 256 | bf16 | batch |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| `{r['config']}` | {r['median_step_ms']} | {r['ratio_to_first']:.2f} | {r['params']:,} | "
                     f"{r['gflops_256']} | {'yes' if r['bf16_autocast'] else 'no'} | {r['batch']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", nargs="+", required=True, help="training configs; the first is the baseline")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=3, help="steps of one config in a row each round")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument("--variant", default="", help="what sets this run apart, for the default --out")
    parser.add_argument("--out", help="default: results/train-step/MODEL/MACHINE-DATE[-VARIANT]")
    args = parser.parse_args()
    cfgs = {path: TrainConfig.from_yaml(path) for path in args.config}
    device = training_device(args.device)
    steppers = {path: Stepper(cfg, device) for path, cfg in cfgs.items()}
    result = report(args.config, steppers, measure(steppers, args.rounds, args.steps))
    out = Path(args.out or result_folder("train-step", cfgs[args.config[0]].arch, args.variant,
                                           on_gpu=device.type == "cuda"))
    write_results(out, result, table(result))


if __name__ == "__main__":
    run_main(main)
