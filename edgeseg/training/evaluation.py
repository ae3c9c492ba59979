"""Validation: the confusion matrix of a model on whole pre-resized samples, and at each
image's own size."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from edgeseg.data.layout import DatasetLayout
from edgeseg.engines.accuracy import frame_size_confusion
from edgeseg.metrics import confusion_matrix
from edgeseg.training.dataset import load_sample, to_tensor_batch
from edgeseg.training.devices import CPU, bf16_context


@torch.no_grad()
def evaluate(model, images, masks, mean, std, num_classes: int, batch_size: int = 16,
             bf16: bool = False, device: torch.device = CPU) -> np.ndarray:
    """Confusion matrix of the model (eval mode, on ``device``) on pre-resized validation samples;
    in fp32, or under bfloat16 autocast (faster where native, for picking the best epoch while
    training; docs/decisions/0009-training-numerics.md)."""
    model.eval()
    confusion = np.zeros((num_classes, num_classes), np.int64)
    for start in range(0, len(images), batch_size):
        x, y = to_tensor_batch(images[start:start + batch_size], masks[start:start + batch_size], mean, std)
        with bf16_context(device, bf16):
            logits = model(x.to(device).contiguous(memory_format=torch.channels_last))
        pred = logits.argmax(1).to(torch.uint8).cpu().numpy()
        confusion += confusion_matrix(pred, y.numpy(), num_classes)
    return confusion


@torch.no_grad()
def evaluate_frame_size(model, layout: DatasetLayout, split: str, spec: dict, mean, std,
                        num_classes: int, device: torch.device = CPU) -> np.ndarray:
    """Confusion matrix at each image's own size, as a station writes masks: the image stretched
    to the model's (height, width), the predicted mask scaled back to the image (nearest, as the
    runtime does) and scored against the mask as labelled. ``spec``: the checkpoint's input."""
    model.eval()
    confusion = np.zeros((num_classes, num_classes), np.int64)
    for sample in layout.samples(split):
        image, mask = load_sample(sample, layout, spec["channels"], spec.get("bit_depth", 16))
        pred = predict_mask(model, image, spec["height"], spec["width"], mean, std, device)
        confusion += frame_size_confusion(pred[None], [mask], num_classes)  # scaled back as verify and the gate do
    return confusion


@torch.no_grad()
def predict_mask(model, image: np.ndarray, height: int, width: int, mean, std,
                 device: torch.device = CPU) -> np.ndarray:
    """The model's class ids (height, width) for one image stretched to its input (linear, as the
    runtime stretches a frame); the model in eval mode, on ``device``."""
    small = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    x, _ = to_tensor_batch([small], [np.zeros((height, width), np.uint8)], mean, std)
    logits = model(x.to(device).contiguous(memory_format=torch.channels_last))
    return logits.argmax(1)[0].to(torch.uint8).cpu().numpy()
