"""Cross-entropy and soft dice over the classes, both ignoring unlabelled pixels.

Both are computed in one pass over the logits with the classes innermost (NHWC, a view of the
channels-last logits the models produce in training), from one log-softmax: the label's
probability is gathered rather than multiplied out of a one-hot mask, and the per-class sums are
scatter-adds. Op by op it is a large share of a training step, so the trainer fuses it with
``torch.compile`` where a C++ compiler is present (docs/decisions/0007-fused-loss.md).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil

import torch

from edgeseg.data.classes import IGNORE_ID

log = logging.getLogger(__name__)


def _loss_terms(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, use_ce: bool,
                use_dice: bool, smooth: float = 1.0) -> torch.Tensor:
    num_classes = logits.shape[1]
    scores = logits.permute(0, 2, 3, 1).float()
    valid = target != IGNORE_ID
    labels = torch.where(valid, target, 0).clamp(max=num_classes - 1).long()
    log_probs = scores.log_softmax(-1)
    label_log_prob = log_probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    counted = valid.float()
    loss = torch.zeros((), dtype=torch.float32, device=logits.device)
    if use_ce:  # the class-weighted mean over labelled pixels, as F.cross_entropy(weight=...) takes it
        pixel_weight = weights[labels] * counted
        loss = loss - (label_log_prob * pixel_weight).sum() / pixel_weight.sum().clamp_min(1e-6)
    if use_dice:
        flat_labels = labels.reshape(-1)
        zeros = torch.zeros(num_classes, dtype=torch.float32, device=logits.device)
        intersection = zeros.scatter_add(0, flat_labels, (label_log_prob.exp() * counted).reshape(-1))
        target_pixels = zeros.scatter_add(0, flat_labels, counted.reshape(-1))
        predicted = (log_probs.exp() * counted.unsqueeze(-1)).reshape(-1, num_classes).sum(0)
        dice = (2 * intersection + smooth) / (predicted + target_pixels + smooth)
        # Classes absent from the target are left out: their dice can only be raised by predicting
        # nothing, which on rare-defect data pushes the model to predict background everywhere.
        present = (target_pixels > 0).float()
        loss = loss + ((1 - dice) * present).sum() / present.sum().clamp_min(1.0)
    return loss


def dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - mean soft dice over the classes present in the batch's target (0 if none is)."""
    return _loss_terms(logits, target, logits.new_ones(logits.shape[1]), False, True, smooth)


def _cxx() -> str:
    return os.environ.get("CXX", "g++")


def can_compile() -> bool:
    """torch.compile's CPU backend builds C++: without a compiler the loss runs op by op."""
    return shutil.which(_cxx()) is not None


@functools.cache
def _compiled():
    return torch.compile(_loss_terms)


class SegmentationLoss(torch.nn.Module):
    """``kind``: ce, dice or ce+dice; ``class_weights`` weigh the cross-entropy per class."""

    def __init__(self, kind: str, class_weights: torch.Tensor | None = None, compiled: bool = False):
        super().__init__()
        self.use_ce, self.use_dice = "ce" in kind, "dice" in kind
        self.register_buffer("class_weights", class_weights if class_weights is not None else None)
        self.compiled = compiled and can_compile()
        if compiled and not self.compiled:
            log.warning("no C++ compiler (%s): the loss runs uncompiled", _cxx())

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weights = self.class_weights if self.class_weights is not None else logits.new_ones(logits.shape[1])
        terms = _compiled() if self.compiled else _loss_terms
        return terms(logits, target, weights.float(), self.use_ce, self.use_dice)
