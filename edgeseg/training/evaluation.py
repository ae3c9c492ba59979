"""Validation: the confusion matrix of a model on whole pre-resized samples."""

from __future__ import annotations

import numpy as np
import torch

from edgeseg.metrics import confusion_matrix
from edgeseg.training.dataset import to_tensor_batch


@torch.no_grad()
def evaluate(model, images, masks, mean, std, num_classes: int, batch_size: int = 16,
             bf16: bool = False) -> np.ndarray:
    """Confusion matrix of the model (eval mode) on pre-resized validation samples; in fp32, or
    under bfloat16 autocast (faster where native, for picking the best epoch while training;
    docs/decisions/0009-training-numerics.md)."""
    model.eval()
    confusion = np.zeros((num_classes, num_classes), np.int64)
    for start in range(0, len(images), batch_size):
        x, y = to_tensor_batch(images[start:start + batch_size], masks[start:start + batch_size], mean, std)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x.contiguous(memory_format=torch.channels_last))
        pred = logits.argmax(1).to(torch.uint8).numpy()
        confusion += confusion_matrix(pred, y.numpy(), num_classes)
    return confusion
