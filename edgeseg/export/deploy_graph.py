"""The graph a camera feeds: uint8 NHWC pixels in, a uint8 class mask (and confidence) out.

Normalisation, channel order, argmax and the cast to uint8 live inside the graph, so no
pre- or post-processing sidecar can drift from the model.
"""

from __future__ import annotations

import torch
from torch import nn

COLOR_ORDERS = ("bgr", "rgb", "gray")


class DeployGraph(nn.Module):
    def __init__(self, model: nn.Module, mean: list[float], std: list[float], model_order: str,
                 input_order: str, confidence: bool):
        super().__init__()
        self.model = model
        self.confidence = confidence
        channels = len(mean)
        # x_model = (pixel / 255 - mean) / std = pixel * scale + bias
        std_t = torch.tensor(std, dtype=torch.float32).view(1, channels, 1, 1)
        mean_t = torch.tensor(mean, dtype=torch.float32).view(1, channels, 1, 1)
        self.register_buffer("scale", 1.0 / (255.0 * std_t))
        self.register_buffer("bias", -mean_t / std_t)
        self.swap_channels = channels == 3 and input_order != model_order

    def forward(self, frames: torch.Tensor):
        x = frames.permute(0, 3, 1, 2).float()
        if self.swap_channels:
            x = x[:, [2, 1, 0]]
        logits = self.model(x * self.scale + self.bias)
        if not self.confidence:
            return logits.argmax(1).to(torch.uint8)
        confidence, mask = logits.softmax(1).max(1)
        return mask.to(torch.uint8), confidence
