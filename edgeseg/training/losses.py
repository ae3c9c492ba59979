"""Cross-entropy and soft dice over the classes, both ignoring unlabelled pixels."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from edgeseg.data.classes import IGNORE_ID


def dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - mean soft dice over the classes present in the batch's target.

    Classes absent from the target are left out: their dice can only be raised by predicting
    nothing, which on rare-defect data pushes the model to predict background everywhere.
    """
    num_classes = logits.shape[1]
    valid = (target != IGNORE_ID).unsqueeze(1)
    probs = logits.float().softmax(1) * valid
    onehot = F.one_hot(target.clamp(max=num_classes - 1).long(), num_classes).permute(0, 3, 1, 2) * valid
    dims = (0, 2, 3)
    target_pixels = onehot.sum(dims)
    present = target_pixels > 0
    if not present.any():  # every pixel unlabelled: nothing to score, and a mean over nothing is NaN
        return logits.new_zeros((), dtype=torch.float32)
    inter = (probs * onehot).sum(dims)
    dice = (2 * inter + smooth) / (probs.sum(dims) + target_pixels + smooth)
    return 1.0 - dice[present].mean()


class SegmentationLoss(torch.nn.Module):
    def __init__(self, kind: str, class_weights: torch.Tensor | None = None):
        super().__init__()
        self.kind = kind
        self.register_buffer("class_weights", class_weights if class_weights is not None else None)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = logits.new_zeros((), dtype=torch.float32)
        if "ce" in self.kind:
            loss = loss + F.cross_entropy(logits.float(), target.long(), weight=self.class_weights,
                                          ignore_index=IGNORE_ID)
        if "dice" in self.kind:
            loss = loss + dice_loss(logits, target)
        return loss
