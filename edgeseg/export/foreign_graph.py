"""The wrapper ``edgeseg import`` puts around a foreign graph, in plain ONNX: cast, channel order,
``(x * scale - mean) / std`` and the layout it wants in front; after it, the output brought to the
frame's size and turned into mask and confidence (softmax, sigmoid or class ids)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import edgeseg
from edgeseg.data.classes import ClassTable
from edgeseg.export.foreign_options import ImportOptions
from edgeseg.export.onnx_export import CONFIDENCE_NAME, INPUT_NAME, MASK_NAME

PREFIX = "foreign/"  # every name of the foreign graph, so that none collides with the wrapper's


def dims(value_info) -> list:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in value_info.type.tensor_type.shape.dim]


def image_input(model: onnx.ModelProto):
    initializers = {i.name for i in model.graph.initializer}
    return next(i for i in model.graph.input if i.name not in initializers)


def _preprocess(opts: ImportOptions, channels: int, scale: float, mean: list[float], std: list[float],
                target: str) -> tuple[list, list]:
    """Nodes and constants from the uint8 NHWC frames to the tensor the foreign graph takes."""
    nodes = [helper.make_node("Cast", [INPUT_NAME], ["pre/float"], to=TensorProto.FLOAT)]
    consts = []
    x = "pre/float"
    if opts.swaps_channels:  # then both orders are colour ones: three channels
        consts.append(numpy_helper.from_array(np.array([2, 1, 0], np.int64), "pre/swap"))
        nodes.append(helper.make_node("Gather", [x, "pre/swap"], ["pre/ordered"], axis=3))
        x = "pre/ordered"
    mul = (scale / np.asarray(std, np.float64)).astype(np.float32).reshape(1, 1, 1, channels)
    add = (-np.asarray(mean, np.float64) / np.asarray(std, np.float64)).astype(np.float32).reshape(1, 1, 1, channels)
    consts += [numpy_helper.from_array(mul, "pre/mul"), numpy_helper.from_array(add, "pre/add")]
    normalized = target if opts.layout == "nhwc" else "pre/normalized"
    nodes += [helper.make_node("Mul", [x, "pre/mul"], ["pre/scaled"]),
              helper.make_node("Add", ["pre/scaled", "pre/add"], [normalized])]
    if opts.layout == "nchw":
        nodes.append(helper.make_node("Transpose", [normalized], [target], perm=[0, 3, 1, 2]))
    return nodes, consts


def _resize_to_frame(x: str, mode: str) -> list:
    """Nodes that bring N x K x h x w to the frames' own H x W (works for dynamic sizes too)."""
    return [helper.make_node("Shape", [x], ["post/shape"]),
             helper.make_node("Slice", ["post/shape", "post/i0", "post/i2"], ["post/nk"]),
             helper.make_node("Shape", [INPUT_NAME], ["post/frame_shape"]),
             helper.make_node("Slice", ["post/frame_shape", "post/i1", "post/i3"], ["post/hw"]),
             helper.make_node("Concat", ["post/nk", "post/hw"], ["post/sizes"], axis=0),
             helper.make_node("Resize", [x, "", "", "post/sizes"], ["post/resized"], mode=mode,
                              coordinate_transformation_mode="half_pixel", nearest_mode="round_prefer_floor")]


def _reduce_max(x: str, out: str, opset: int) -> list:
    if opset >= 18:  # axes became an input
        return [helper.make_node("ReduceMax", [x, "post/i1"], [out], keepdims=0)]
    return [helper.make_node("ReduceMax", [x], [out], axes=[1], keepdims=0)]


def _channels_last(opts: ImportOptions, shape: list[int]) -> bool:
    if opts.head == "argmax":
        return len(shape) == 4 and shape[3] == 1 and shape[1] != 1  # N x H x W x 1
    return opts.logits_layout == "nhwc"


def logits_size(opts: ImportOptions, shape: list[int]) -> tuple[int, int]:
    if len(shape) == 3:
        return shape[1], shape[2]
    return (shape[1], shape[2]) if _channels_last(opts, shape) else (shape[2], shape[3])


def _postprocess(opts: ImportOptions, logits: str, shape: list[int], resize: bool,
                 opset: int) -> tuple[list, list, list[str]]:
    """Nodes from the foreign output to mask (and confidence); returns them, constants, output names."""
    nodes, x = [], logits
    if opts.head == "argmax" and len(shape) == 3:
        nodes.append(helper.make_node("Unsqueeze", [x, "post/i1"], ["post/nchw"]))
        x = "post/nchw"
    elif _channels_last(opts, shape):
        nodes.append(helper.make_node("Transpose", [x], ["post/nchw"], perm=[0, 3, 1, 2]))
        x = "post/nchw"
    if opts.head == "argmax":  # class ids are resized as floats, nearest
        nodes.append(helper.make_node("Cast", [x], ["post/ids_float"], to=TensorProto.FLOAT))
        x = "post/ids_float"
    consts = [numpy_helper.from_array(np.array([v], np.int64), f"post/i{v}") for v in (0, 1, 2, 3)]
    consts += [numpy_helper.from_array(np.array(0.5, np.float32), "post/half"),
               numpy_helper.from_array(np.array(1.0, np.float32), "post/one")]
    if resize:
        nodes += _resize_to_frame(x, "nearest" if opts.head == "argmax" else "linear")
        x = "post/resized"
    head_nodes, names = _head(opts, x, opset)
    nodes += head_nodes
    used = {name for node in nodes for name in node.input}
    return nodes, [c for c in consts if c.name in used], names


def _head(opts: ImportOptions, x: str, opset: int) -> tuple[list, list[str]]:
    if opts.head == "argmax":
        return [helper.make_node("Squeeze", [x, "post/i1"], ["post/ids"]),
                helper.make_node("Cast", ["post/ids"], [MASK_NAME], to=TensorProto.UINT8)], [MASK_NAME]
    if opts.head == "sigmoid":
        nodes = [helper.make_node("Sigmoid", [x], ["post/p"]),
                 helper.make_node("Greater", ["post/p", "post/half"], ["post/fg"]),
                 helper.make_node("Cast", ["post/fg"], ["post/mask4"], to=TensorProto.UINT8),
                 helper.make_node("Squeeze", ["post/mask4", "post/i1"], [MASK_NAME])]
        if opts.confidence:
            nodes += [helper.make_node("Sub", ["post/one", "post/p"], ["post/q"]),
                      helper.make_node("Max", ["post/p", "post/q"], ["post/conf4"]),
                      helper.make_node("Squeeze", ["post/conf4", "post/i1"], [CONFIDENCE_NAME])]
        return nodes, [MASK_NAME, CONFIDENCE_NAME] if opts.confidence else [MASK_NAME]
    nodes = [helper.make_node("ArgMax", [x], ["post/ids"], axis=1, keepdims=0),
             helper.make_node("Cast", ["post/ids"], [MASK_NAME], to=TensorProto.UINT8)]
    if not opts.confidence:
        return nodes, [MASK_NAME]
    nodes.append(helper.make_node("Softmax", [x], ["post/prob"], axis=1))
    nodes += _reduce_max("post/prob", CONFIDENCE_NAME, opset)
    return nodes, [MASK_NAME, CONFIDENCE_NAME]


def wrap(model: onnx.ModelProto, opts: ImportOptions, channels: int, height: int, width: int, dynamic: bool,
         logits_shape: list[int], normalize: tuple[float, list[float], list[float]]) -> onnx.ModelProto:
    """The foreign graph between edgeseg's pre- and post-processing, as one graph."""
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    foreign = onnx.compose.add_prefix(model, PREFIX)
    image = PREFIX + image_input(model).name
    logits = PREFIX + model.graph.output[0].name
    pre_nodes, pre_consts = _preprocess(opts, channels, *normalize, target=image)
    resize = dynamic or logits_size(opts, logits_shape) != (height, width)
    post_nodes, post_consts, names = _postprocess(opts, logits, logits_shape, resize, opset)
    dims = _outputdims(model, height, width, dynamic)
    outputs = [helper.make_tensor_value_info(MASK_NAME, TensorProto.UINT8, dims)]
    if CONFIDENCE_NAME in names:
        outputs.append(helper.make_tensor_value_info(CONFIDENCE_NAME, TensorProto.FLOAT, dims))
    graph = helper.make_graph(
        pre_nodes + list(foreign.graph.node) + post_nodes, "edgeseg-import",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, dims + [channels])], outputs,
        initializer=list(foreign.graph.initializer) + pre_consts + post_consts,
        value_info=list(foreign.graph.value_info))
    wrapped = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version,
                                producer_name="edgeseg import", producer_version=edgeseg.__version__)
    wrapped.functions.extend(foreign.functions)
    return wrapped


def _outputdims(model: onnx.ModelProto, height: int, width: int, dynamic: bool) -> list:
    """N x H x W of the wrapped graph: the foreign batch where it is fixed, else 1 (or dynamic with a
    dynamic size, as ``edgeseg export --dynamic`` makes it)."""
    batch = dims(image_input(model))[0]
    if not isinstance(batch, int):
        batch = "batch" if dynamic else 1
    return [batch, "height" if dynamic else height, "width" if dynamic else width]


def metadata(model: onnx.ModelProto, opts: ImportOptions, table: ClassTable, channels: int, height: int,
             width: int, dynamic: bool, normalize: tuple[float, list[float], list[float]], names: list[str],
             source_sha256: str) -> dict:
    """The edgeseg metadata compile reads, as ``edgeseg export`` writes it."""
    dims = _outputdims(model, height, width, dynamic)
    outputs = [{"name": MASK_NAME, "dtype": "uint8", "shape": dims, "meaning": "class id per pixel"}]
    if CONFIDENCE_NAME in names:
        meaning = "max(p, 1 - p) of the sigmoid" if opts.head == "sigmoid" else "max softmax probability per pixel"
        outputs.append({"name": CONFIDENCE_NAME, "dtype": "float32", "shape": dims, "meaning": meaning})
    scale, mean, std = normalize
    return {
        "edgeseg.version": edgeseg.__version__,
        "edgeseg.classes": table.to_list(),
        "edgeseg.input": {"name": INPUT_NAME, "dtype": "uint8", "layout": "NHWC", "shape": dims + [channels],
                          "channels": channels, "color_order": opts.frames_order,
                          "height": height, "width": width, "resize": "stretch-linear", "dynamic": dynamic,
                          "bit_depth": 16},
        "edgeseg.outputs": outputs,
        "edgeseg.model": {"arch": "foreign", "stride": 1, "metrics": None,
                          "normalization": {"scale": scale, "mean": mean, "std": std},
                          "imported": {"file": Path(opts.foreign).name, "sha256": source_sha256,
                                       "layout": opts.layout, "output_layout": opts.logits_layout,
                                       "channel_order": opts.channel_order, "head": opts.head}},
    }
