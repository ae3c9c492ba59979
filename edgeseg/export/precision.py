"""Precision recipes: each makes an ONNX graph, so the same fp16 or int8 graph runs on OpenVINO,
ONNX Runtime and TensorRT alike (DESIGN.md: precision lives in the graph).

- fp32: the graph as exported.
- fp16: weights and arithmetic converted; the uint8 frames in, uint8 mask and float32
  confidence out stay as they are; softmax and its maximum stay fp32 so the confidence is exact.
- int8: a Q/DQ graph from NNCF post-training quantization, calibrated on real frames. The
  classifier convolution (the logits) and the softmax/argmax head stay in higher precision: the
  argmax between two close logits is where int8 rounding flips pixels. With accuracy control,
  NNCF also measures mIoU on labelled calibration frames and returns to floating point, one by
  one, the layers whose quantization costs the most, until the loss is within ``max_drop``.
  Compile tries the "float-sums" recipe (below) when the standard one fails the gate.
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
# "float-sums", the fallback when the standard recipe fails the gate, also keeps in float the
# sums (residual shortcuts, summed classifiers), the decoder's resizes and concatenations, and the
# first convolution, which reads the frame (docs/decisions/0003-int8-float-sums-recipe.md).
INT8_RECIPES = ("standard", "float-sums")
_FLOAT_SUMS_TYPES = ["Add", "Resize", "Concat"]


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


ACCURACY_CONTROL_MAX_DROP = 0.007  # leaves margin under the gate's 1.0 mIoU point


def _miou_through_onnxruntime(class_count: int):
    """validation_fn for NNCF: mIoU of a candidate graph on (frames, truth) items, through ONNX Runtime."""
    import onnxruntime as ort

    from edgeseg.metrics import confusion_matrix, iou_report

    def validate(model: onnx.ModelProto, items) -> float:
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        confusion = np.zeros((class_count, class_count), np.int64)
        for frames, truth in items:
            confusion += confusion_matrix(session.run(["mask"], {name: frames})[0], truth, class_count)
        return iou_report(confusion, [str(i) for i in range(class_count)])["miou"]
    return validate


def int8_graph(model: onnx.ModelProto, frames: np.ndarray, input_name: str, batch: int,
               truth: np.ndarray | None = None, class_count: int = 0, recipe: str = "standard") -> onnx.ModelProto:
    """Post-training quantization to a Q/DQ graph with NNCF, calibrated on uint8 NHWC frames; with
    ``truth`` (masks of those frames), accuracy-controlled. ``recipe``: one of INT8_RECIPES."""
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
    float_types = list(_HEAD_OPS)
    if recipe == "float-sums":
        keep.append(next(node.name for node in model.graph.node if node.op_type == "Conv"))
        float_types += _FLOAT_SUMS_TYPES
    elif recipe != "standard":
        raise ExportError(f"unknown int8 recipe {recipe}", fix=f"use one of {', '.join(INT8_RECIPES)}")
    ignored = nncf.IgnoredScope(names=keep, types=float_types, validate=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if truth is None:
            return nncf.quantize(model, nncf.Dataset(batches, lambda x: {input_name: x}), subset_size=len(batches),
                                 ignored_scope=ignored)
        if batch != 1:
            raise ExportError("accuracy control needs a batch-1 graph", fix="export with --batch 1")
        items = [(frames[i:i + 1], truth[i:i + 1]) for i in range(len(frames))]
        return nncf.quantize_with_accuracy_control(
            model, nncf.Dataset(items, lambda item: {input_name: item[0]}), nncf.Dataset(items),
            _miou_through_onnxruntime(class_count), max_drop=ACCURACY_CONTROL_MAX_DROP,
            drop_type=nncf.DropType.ABSOLUTE, subset_size=len(items), ignored_scope=ignored)
