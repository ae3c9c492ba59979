"""Benchmark: how fast this machine makes a config's training batches (augment, normalise) in
one process (0 workers, as training makes them) and in 1, 2, ... PyTorch DataLoader worker
processes, beside nothing else: the rate an accelerator's training steps cannot outrun. Reports
milliseconds per batch, the median of ``--epochs`` epochs after the data set is loaded, and the
speed-up over the first setting. (Training itself has no workers: 8 of them did not train
faster on a GPU, docs/measurements/training.md#on-a-gpu.)

    .venv/bin/python benchmarks/batch_pipeline.py [--config YAML] [--data DIR] [--workers 0 1 2 4 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from common import DEFAULT_DATA, HERE, cpu_name, result_folder, run_main, write_results
from edgeseg.data import DatasetLayout
from edgeseg.training.config import TrainConfig
from edgeseg.training.dataset import TrainBatches, infer_channels
from edgeseg.training.trainer import load_data


class EpochPlan(Dataset):
    """One epoch's batches by number, each from its own stream, as ``TrainBatches.epoch`` makes them."""

    def __init__(self, batches: TrainBatches, epoch: int, seed: int):
        self.batches, self.epoch, self.seed = batches, epoch, seed
        self.shares = batches.plan(epoch, seed)

    def __len__(self) -> int:
        return len(self.shares)

    def __getitem__(self, k: int):
        return self.batches.batch(self.shares[k], self.batches.batch_stream(self.epoch, self.seed, 0, k))


def epoch_seconds(batches: TrainBatches, epoch: int, seed: int, workers: int) -> float:
    started = time.perf_counter()
    made = (batches.epoch(epoch, seed) if workers == 0 else  # fork: the workers share the loaded images
            DataLoader(EpochPlan(batches, epoch, seed), batch_size=None, num_workers=workers,
                       multiprocessing_context="fork"))
    for _ in made:
        pass
    return time.perf_counter() - started


def table(result: dict) -> str:
    lines = [f"Training batches of `{result['config']}` (batch {result['batch']}, {result['batches_per_epoch']} "
             f"per epoch), {result['cpu']}, {result['cores']} cores (benchmarks/batch_pipeline.py)", "",
             "| loader workers | epoch (s) | ms per batch | speed-up |", "|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['loader_workers']} | {row['epoch_seconds']} | {row['ms_per_batch']} | "
                     f"{row['speedup']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(HERE / "configs" / "magnetic_tile_lraspp256_lean.yaml"))
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", help="default: results/batch-pipeline/MODEL/MACHINE-DATE")
    args = parser.parse_args()
    cfg = TrainConfig.from_yaml(args.config)
    cfg.data = args.data
    torch.set_num_threads(1)  # as each worker takes one
    layout = DatasetLayout.open(cfg.data)
    batches = load_data(cfg, layout, cfg.channels or infer_channels(layout, layout.split_stems("train"))).batches
    steps, rows = batches.steps_per_epoch(), []
    for workers in args.workers:
        seconds = statistics.median(epoch_seconds(batches, epoch, cfg.seed, workers) for epoch in range(args.epochs))
        rows.append({"loader_workers": workers, "epoch_seconds": round(seconds, 2),
                     "ms_per_batch": round(1000 * seconds / steps, 1)})
    for row in rows:
        row["speedup"] = round(rows[0]["epoch_seconds"] / row["epoch_seconds"], 2)
    result = {"cpu": cpu_name(), "cores": len(os.sched_getaffinity(0)), "config": Path(args.config).name,
              "batch": cfg.batch_size, "batches_per_epoch": steps, "rows": rows}
    write_results(Path(args.out or result_folder("batch-pipeline", cfg.arch)), result, table(result))


if __name__ == "__main__":
    run_main(main)
