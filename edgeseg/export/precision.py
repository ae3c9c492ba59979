"""Precision recipes: each makes an ONNX graph, so the same fp16 or int8 graph runs on OpenVINO,
ONNX Runtime and TensorRT alike (DESIGN.md: precision lives in the graph).

- fp32: the graph as exported.
- fp16: weights and arithmetic converted; the uint8 frames in, uint8 mask and float32
  confidence out stay as they are; softmax and its maximum stay fp32 so the confidence is exact.
- int8: a Q/DQ graph from NNCF post-training quantization, calibrated on real frames. The
  classifier convolution (the logits) and the softmax/argmax head stay in higher precision: the
  argmax between two close logits is where int8 rounding flips pixels.
- bf16: not a graph; the fp32 graph run with OpenVINO's bf16 inference hint.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import onnx

from edgeseg.errors import ExportError

MIN_CALIBRATION_FRAMES = 300
_HEAD_OPS = ("Softmax", "ReduceMax", "ArgMax")


def fp16_graph(model: onnx.ModelProto) -> onnx.ModelProto:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns about every weight it clamps into fp16 range
        return convert_float_to_float16(model, keep_io_types=True, op_block_list=["Softmax", "ReduceMax"])


def classifier_convs(model: onnx.ModelProto) -> list[str]:
    """Names of the convolutions whose output reaches the softmax without passing another
    convolution: the layers that produce the logits."""
    producers = {out: node for node in model.graph.node for out in node.output}
    found, seen = [], set()
    stack = [i for node in model.graph.node if node.op_type == "Softmax" for i in node.input]
    while stack:
        tensor = stack.pop()
        node = producers.get(tensor)
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type == "Conv":
            found.append(node.name)
        else:
            stack.extend(node.input)
    return found


def int8_graph(model: onnx.ModelProto, frames: np.ndarray, input_name: str, batch: int) -> onnx.ModelProto:
    """Post-training quantization to a Q/DQ graph with NNCF, calibrated on uint8 NHWC frames."""
    import nncf

    nncf.set_log_level(logging.ERROR)
    if len(frames) == 0:
        raise ExportError("no calibration frames")
    batches = [np.ascontiguousarray(np.concatenate([frames[i:i + batch]] +
                                                   [frames[-1:]] * max(0, batch - len(frames[i:i + batch]))))
               for i in range(0, len(frames), batch)]
    keep = classifier_convs(model)
    if not keep:
        raise ExportError("cannot find the classifier convolution before the softmax",
                          fix="int8 needs a graph exported by edgeseg export")
    dataset = nncf.Dataset(batches, lambda x: {input_name: x})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nncf.quantize(model, dataset, subset_size=len(batches),
                             ignored_scope=nncf.IgnoredScope(names=keep, types=list(_HEAD_OPS), validate=False))
