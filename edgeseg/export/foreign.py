"""``edgeseg import``: a segmentation graph trained elsewhere, wrapped in edgeseg's contract so
that compile, verify, run and bench take it unchanged: uint8 NHWC camera frames in; a uint8 class
mask, and a float confidence, out, at the input's resolution.

The wrapper (``foreign_graph.py``) is plain ONNX around the foreign graph. What can be checked
is checked here (opset, class count against the class table, shapes at the declared size) and the
rest refused in one line; the wrapped graph's masks are compared with the foreign graph's own
(its output resized and argmax'ed outside the graph) before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto

from edgeseg.data.classes import ClassTable
from edgeseg.errors import ExportError, first_line
from edgeseg.export.foreign_graph import dims, image_input, metadata, wrap
from edgeseg.export.foreign_options import ImportOptions, ImportResult, check_choices, normalization
from edgeseg.export.onnx_export import INPUT_NAME, MASK_NAME

MIN_OPSET = 13  # Softmax over one axis, Squeeze and Unsqueeze with axes as inputs


def _fail(what: str, path, fix: str | None = None):
    raise ExportError(what, path, fix)


def read_foreign(path: Path) -> onnx.ModelProto:
    """The foreign graph at opset >= 13 (converted up where it is older), with one image input."""
    if not path.is_file():
        _fail("ONNX file not found", path)
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as e:
        _fail(f"not a readable ONNX graph ({first_line(e)})", path, "the file is truncated or corrupt")
    if any(p.key == "edgeseg.input" for p in model.metadata_props):
        _fail("this graph was exported by edgeseg already", path, "compile it directly: edgeseg compile")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        try:
            model = onnx.version_converter.convert_version(model, MIN_OPSET)
        except Exception as e:
            _fail(f"opset {opset} is older than {MIN_OPSET} and cannot be converted ({first_line(e)})", path,
                  f"export it again with opset {MIN_OPSET} or newer")
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        _fail(f"the graph has {len(inputs)} inputs; import takes one image input", path)
    if not model.graph.output:
        _fail("the graph has no output", path)
    return model


def declared_input(model: onnx.ModelProto, opts: ImportOptions) -> tuple[int, int, int, bool]:
    """(channels, height, width, dynamic) of the foreign input at the size it will run."""
    shape = dims(image_input(model))
    if len(shape) != 4:
        _fail(f"the input has {len(shape)} dimensions; an image input is 4-D ({opts.layout.upper()})", opts.foreign)
    channels, height, width = (shape[1], shape[2], shape[3]) if opts.layout == "nchw" else (shape[3], shape[1],
                                                                                            shape[2])
    wanted_channels = 1 if opts.channel_order == "gray" else 3
    if channels != wanted_channels:
        _fail(f"the input has {channels} channels where {opts.layout.upper()} and channel order "
              f"'{opts.channel_order}' mean {wanted_channels}", opts.foreign,
              "give the right --layout and --channel-order")
    dynamic = not (isinstance(height, int) and isinstance(width, int))
    if dynamic and not (opts.height and opts.width):
        _fail("the graph's input size is dynamic", opts.foreign, "declare the size it runs at: --size HxW")
    if not dynamic and (opts.height, opts.width) not in ((None, None), (height, width)):
        _fail(f"the graph's input is fixed at {width}x{height}, not {opts.width}x{opts.height}", opts.foreign,
              "leave --size out, or export the foreign graph with a dynamic size")
    return channels, (opts.height if dynamic else height), (opts.width if dynamic else width), dynamic


def probe(model: onnx.ModelProto, opts: ImportOptions, channels: int, height: int,
          width: int) -> tuple[list[int], object]:
    """The foreign graph's output shape on one frame at the declared size, and the ONNX Runtime
    session that ran it (the parity runs the graph again in it)."""
    image = image_input(model)
    if image.type.tensor_type.elem_type != TensorProto.FLOAT:
        _fail("the input is not float32", opts.foreign, "export the foreign graph with a float32 input")
    shape = [1, channels, height, width] if opts.layout == "nchw" else [1, height, width, channels]
    try:
        session = _session(model)
        out = session.run([model.graph.output[0].name], {image.name: np.zeros(shape, np.float32)})[0]
    except Exception as e:
        _fail(f"the graph does not run at {width}x{height} ({first_line(e)})", opts.foreign,
              "check --layout, --channel-order and --size")
    return list(out.shape), session


def _session(model: onnx.ModelProto):
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def check_classes(logits_shape: list[int], opts: ImportOptions, table: ClassTable) -> None:
    n = table.num_classes
    if opts.head == "argmax":
        if len(logits_shape) not in (3, 4) or (len(logits_shape) == 4 and 1 not in (logits_shape[1],
                                                                                   logits_shape[3])):
            _fail(f"an argmax output is N x H x W class ids, not {logits_shape}", opts.foreign)
        return
    if len(logits_shape) != 4:
        _fail(f"logits are N x K x H x W (or N x H x W x K), not {logits_shape}", opts.foreign,
              "give --head argmax for an output of class ids")
    k = logits_shape[1] if opts.logits_layout == "nchw" else logits_shape[3]
    if opts.head == "sigmoid" and (k != 1 or n != 2):
        _fail(f"--head sigmoid takes one output channel for two classes; the graph gives {k} for the table's {n}",
              opts.foreign)
    if opts.head == "softmax" and k != n:
        hint = "; a one-channel output for two classes is --head sigmoid" if k == 1 and n == 2 else ""
        _fail(f"the graph gives {k} classes and the class table has {n}{hint}", opts.classes,
              "give the class table the model was trained with")


def parity_frames(opts: ImportOptions, channels: int, height: int, width: int) -> tuple[np.ndarray, str]:
    """uint8 NHWC frames at the declared size: the data set's val images, else seeded noise."""
    if opts.data:
        from edgeseg.export.parity import parity_samples

        frames = [frame for frame, _ in parity_samples(Path(opts.data), "val", channels, height, width,
                                                      opts.parity_frames)]
        if frames:
            return np.stack(frames), f"{opts.data} (val)"
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (opts.parity_frames, height, width, channels), dtype=np.uint8)
    return noise, "random frames (give --data DIR to measure on real ones)"


def foreign_masks(model: onnx.ModelProto, session, opts: ImportOptions, frames: np.ndarray,
                  normalize: tuple[float, list[float], list[float]]) -> np.ndarray:
    """What the foreign graph says (run in ``session``), computed outside the wrapper: frames
    normalised in NumPy, its logits brought to the frame's size with OpenCV (bilinear, as the
    wrapper), argmax."""
    import cv2

    scale, mean, std = normalize
    name, (height, width) = image_input(model).name, frames.shape[1:3]
    masks = []
    for frame in frames:
        x = frame.astype(np.float32)
        if opts.swaps_channels:
            x = x[..., ::-1]
        x = (x * scale - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
        x = x.transpose(2, 0, 1)[None] if opts.layout == "nchw" else x[None]
        out = session.run([model.graph.output[0].name], {name: np.ascontiguousarray(x, np.float32)})[0][0]
        masks.append(_argmax_at(opts, out, height, width, cv2))
    return np.stack(masks)


def _argmax_at(opts: ImportOptions, out: np.ndarray, height: int, width: int, cv2) -> np.ndarray:
    if opts.head == "argmax":
        ids = out.reshape(out.shape[-2:] if out.ndim == 2 or out.shape[0] == 1 else out.shape[:2]).astype(np.float32)
        return cv2.resize(ids, (width, height), interpolation=cv2.INTER_NEAREST_EXACT).astype(np.uint8)
    hwc = out.transpose(1, 2, 0) if opts.logits_layout == "nchw" else out
    hwc = cv2.resize(np.ascontiguousarray(hwc), (width, height), interpolation=cv2.INTER_LINEAR)
    if hwc.ndim == 2:
        hwc = hwc[..., None]
    return (hwc[..., 0] > 0).astype(np.uint8) if opts.head == "sigmoid" else hwc.argmax(-1).astype(np.uint8)


def _run_wrapped(wrapped: onnx.ModelProto, frames: np.ndarray) -> np.ndarray:
    session = _session(wrapped)
    return np.stack([session.run([MASK_NAME], {INPUT_NAME: frame[None]})[0][0] for frame in frames])


def import_foreign(opts: ImportOptions) -> ImportResult:
    """Wrap, check and write the foreign graph; its parity against the foreign graph is measured
    before anything is written."""
    import hashlib
    import os

    check_choices(opts)
    source = Path(opts.foreign)
    model = read_foreign(source)
    table = ClassTable.read_csv(Path(opts.classes))
    channels, height, width, dynamic = declared_input(model, opts)
    normalize = normalization(opts, channels)
    logits_shape, session = probe(model, opts, channels, height, width)
    check_classes(logits_shape, opts, table)
    wrapped = wrap(model, opts, channels, height, width, dynamic, logits_shape, normalize)
    names = [o.name for o in wrapped.graph.output]
    sha256 = hashlib.sha256(source.read_bytes()).hexdigest()
    for key, value in metadata(model, opts, table, channels, height, width, dynamic, normalize, names,
                               sha256).items():
        wrapped.metadata_props.add(key=key, value=value if isinstance(value, str) else json.dumps(value))
    try:
        onnx.checker.check_model(wrapped, full_check=True)
    except Exception as e:
        _fail(f"the wrapped graph is not valid ONNX ({first_line(e)})", source, "please report it with the graph")
    frames, where = parity_frames(opts, channels, height, width)
    agreement = float(np.mean(_run_wrapped(wrapped, frames) == foreign_masks(model, session, opts, frames, normalize)))
    output = Path(opts.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.partial")
    onnx.save(wrapped, str(tmp))
    os.replace(tmp, output)
    return ImportResult(output, table.num_classes, height, width, dynamic, logits_shape, agreement, len(frames),
                        where)
