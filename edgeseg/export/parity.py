"""Parity of an exported graph with the PyTorch model on real images, through ONNX Runtime."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edgeseg.data import DatasetLayout
from edgeseg.data.frames import resize_pair, spread_evenly
from edgeseg.data.imageio import read_image, read_mask
from edgeseg.metrics import confusion_matrix, iou_report, pixel_agreement
from edgeseg.progress import progress


@dataclass
class ParityReport:
    images: int
    pixel_agreement: float
    reference: dict  # IoU report of the PyTorch model against ground truth
    exported: dict  # IoU report of the exported graph against ground truth
    source: str

    def to_dict(self) -> dict:
        return {"images": self.images, "pixel_agreement": round(self.pixel_agreement, 6),
                "reference": self.reference, "exported": self.exported, "source": self.source}


def parity_samples(data: Path, split: str, channels: int, height: int, width: int, limit: int,
                   bit_depth: int = 16):
    """(frame uint8 HxWxC, ground truth HxW) pairs stretched to the model input, as the runtime does;
    up to ``limit`` spread over the split (split lists are often sorted by class)."""
    layout = DatasetLayout.open(data)
    samples = spread_evenly(layout.samples(split), limit)
    for s in samples:
        image = read_image(s.image, channels, bit_depth)
        image, mask = resize_pair(image, read_mask(s.mask, layout.classes), width, height)
        yield (image[..., None] if image.ndim == 2 else image), mask


@torch.no_grad()
def measure_parity(onnx_path: Path, graph: torch.nn.Module, data: Path, split: str, channels: int,
                   height: int, width: int, class_names: list[str], limit: int = 200,
                   show_progress: bool = True, bit_depth: int = 16) -> ParityReport:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    graph_input = session.get_inputs()[0]
    input_name = graph_input.name
    static_batch = graph_input.shape[0] if isinstance(graph_input.shape[0], int) else 1
    n = len(class_names)
    ref_conf = np.zeros((n, n), np.int64)
    exp_conf = np.zeros((n, n), np.int64)
    agree, total, count = 0, 0, 0
    pairs = parity_samples(data, split, channels, height, width, limit, bit_depth)
    for frame, truth in progress(pairs, desc="parity", unit="img", disable=not show_progress, leave=False):
        batch = np.ascontiguousarray(np.repeat(frame[None], static_batch, axis=0))
        exported = session.run(None, {input_name: batch})[0][0]
        out = graph(torch.from_numpy(batch))
        reference = (out[0] if isinstance(out, tuple) else out)[0].numpy()
        agree += pixel_agreement(exported, reference) * reference.size
        total += reference.size
        ref_conf += confusion_matrix(reference, truth, n)
        exp_conf += confusion_matrix(exported, truth, n)
        count += 1
    return ParityReport(count, agree / max(total, 1), iou_report(ref_conf, class_names),
                        iou_report(exp_conf, class_names), f"{data} ({split})")
