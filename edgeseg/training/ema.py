"""An exponential moving average of the weights (and BatchNorm statistics) whose decay warms up.

A fixed decay of 0.995 starts the average at the untrained weights and lets it trail the model
by hundreds of steps while the weights still move fast: on magnetic-tile the averaged model
still predicted background everywhere after 11 epochs while the trained one already found
blowholes and cracks. The decay therefore grows with the number of updates,
min(decay, (1 + n) / (10 + n)) (as TensorFlow's ExponentialMovingAverage with num_updates), so
the average follows the model closely at first and smooths over ~1/(1 - decay) steps later on.
"""

from __future__ import annotations

import torch
from torch.optim.swa_utils import AveragedModel


def warmed_decay(decay: float, updates: int) -> float:
    return min(decay, (1 + updates) / (10 + updates))


def _update(decay: float):
    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], updates: torch.Tensor) -> None:
        d = warmed_decay(decay, int(updates))
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, 1 - d)
        else:  # integer buffers (BatchNorm's batch count): kept as the model's
            for a, c in zip(averaged, current, strict=True):
                a.copy_(c)
    return update


def moving_average(model: torch.nn.Module, decay: float) -> AveragedModel:
    return AveragedModel(model, multi_avg_fn=_update(decay), use_buffers=True)
