"""Training on several processes with PyTorch's own engine: ``torchrun --nproc-per-node N -m
edgeseg train ...`` (or ``edgeseg train --distributed N``, which starts torchrun) runs the same
training under DistributedDataParallel, gloo on CPUs and NCCL on GPUs. Every rank draws the same
epoch order and takes its share of each global batch; rank 0 evaluates, writes checkpoints and
logs, and decides what all must agree on (stop, reduced size, the time used)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def join(cuda: bool) -> Ranks:
    """This process's place in a torchrun launch (RANK, WORLD_SIZE, LOCAL_RANK), its process group
    started (NCCL between GPUs where ``cuda``, else gloo); a single process where torchrun did not
    start it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Ranks()
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size(), local_rank,
                 int(os.environ.get("LOCAL_WORLD_SIZE", str(world))))


def leave(ranks: Ranks) -> None:
    if ranks.distributed:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()


def from_main(ranks: Ranks, value: Any) -> Any:
    """Rank 0's ``value`` on every rank: a decision all must share."""
    if not ranks.distributed:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gathered(ranks: Ranks, value: Any) -> list:
    """Every rank's ``value``, in rank order, on every rank."""
    if not ranks.distributed:
        return [value]
    import torch.distributed as dist

    values: list = [None] * ranks.world
    dist.all_gather_object(values, value)
    return values


def wait_for_all(ranks: Ranks) -> None:
    if ranks.distributed:
        import torch.distributed as dist

        dist.barrier()


def wrap(model: torch.nn.Module, ranks: Ranks, device: torch.device) -> torch.nn.Module:
    """The model (on ``device``) as DistributedDataParallel where several processes train it, else as it is."""
    if not ranks.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def unwrapped(model: torch.nn.Module) -> torch.nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model
