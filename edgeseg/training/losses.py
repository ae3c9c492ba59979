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
        loss = loss + _dice_term(intersection, predicted, target_pixels, smooth)
    return loss


def _dice_term(intersection: torch.Tensor, predicted: torch.Tensor, target_pixels: torch.Tensor,
               smooth: float) -> torch.Tensor:
    """1 - the mean soft dice over the classes present in the target, from per-class sums."""
    dice = (2 * intersection + smooth) / (predicted + target_pixels + smooth)
    # Classes absent from the target are left out: their dice can only be raised by predicting
    # nothing, which on rare-defect data pushes the model to predict background everywhere.
    present = (target_pixels > 0).float()
    return ((1 - dice) * present).sum() / present.sum().clamp_min(1.0)


def _soft_loss_terms(logits: torch.Tensor, shares: torch.Tensor, weights: torch.Tensor, use_ce: bool,
                     use_dice: bool, smooth: float = 1.0) -> torch.Tensor:
    """The same terms against soft labels ``shares`` (N, h, w, C): each class's share of the
    labelled pixels a logit stands for (all zero where none is labelled). One-hot shares give
    ``_loss_terms``'s value."""
    num_classes = logits.shape[1]
    log_probs = logits.permute(0, 2, 3, 1).float().log_softmax(-1)
    loss = torch.zeros((), dtype=torch.float32, device=logits.device)
    if use_ce:
        weighted = shares * weights
        loss = loss - (log_probs * weighted).sum() / weighted.sum().clamp_min(1e-6)
    if use_dice:
        flat = shares.reshape(-1, num_classes)
        probs = log_probs.exp().reshape(-1, num_classes)
        predicted = (probs * flat.sum(1, keepdim=True)).sum(0)  # over labelled pixels only
        loss = loss + _dice_term((probs * flat).sum(0), predicted, flat.sum(0), smooth)
    return loss


def label_shares(target: torch.Tensor, num_classes: int, factor: int) -> torch.Tensor:
    """(N, H/f, W/f, C): each class's share of every f x f block of ``target`` (ignored pixels
    count for no class), the labels of a logit computed at 1/f of the side."""
    n, height, width = target.shape
    rows, cols = height // factor, width // factor
    target = target[:, :rows * factor, :cols * factor].long()
    # ids past the last class count as the last, as in _loss_terms; ignored pixels in a spare column
    labels = target.clamp(max=num_classes - 1).masked_fill_(target == IGNORE_ID, num_classes)
    blocks = labels.reshape(n, rows, factor, cols, factor).transpose(2, 3).reshape(n, rows, cols, factor * factor)
    # counted by a scatter-add: a float one-hot of a 256-px batch, pooled, cost a tenth of a step
    counts = torch.zeros((n, rows, cols, num_classes + 1), device=target.device)
    counts.scatter_add_(-1, blocks, torch.ones((), device=target.device).expand(blocks.shape))
    return counts[..., :num_classes] / factor**2


def dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - mean soft dice over the classes present in the batch's target (0 if none is)."""
    return _loss_terms(logits, target, logits.new_ones(logits.shape[1]), False, True, smooth)


def _cxx() -> str:
    return os.environ.get("CXX", "g++")


def can_compile() -> bool:
    """torch.compile's CPU backend builds C++: without a compiler the loss runs op by op."""
    return shutil.which(_cxx()) is not None


@functools.cache
def _compiled(soft: bool = False):
    return torch.compile(_soft_loss_terms if soft else _loss_terms)


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
        """``logits`` at the target's size, or at 1/f of its side (f an integer): then against the
        share of each class in every f x f block of the target."""
        weights = self.class_weights if self.class_weights is not None else logits.new_ones(logits.shape[1])
        factor = target.shape[-1] // logits.shape[-1]
        if factor == 1:
            terms = _compiled() if self.compiled else _loss_terms
            return terms(logits, target, weights.float(), self.use_ce, self.use_dice)
        if tuple(logits.shape[-2:]) != (target.shape[-2] // factor, target.shape[-1] // factor):
            raise ValueError(f"logits {tuple(logits.shape[-2:])} are not the target {tuple(target.shape[-2:])} "
                             f"at 1/{factor} of its side")
        shares = label_shares(target, logits.shape[1], factor)
        terms = _compiled(True) if self.compiled else _soft_loss_terms
        return terms(logits, shares, weights.float(), self.use_ce, self.use_dice)
