"""``edgeseg export``: checkpoint -> ONNX graph with pre/post-processing folded in, checked,
simplified, described in its metadata, and proven against the PyTorch model before it is kept.

The legacy TorchScript exporter is used on purpose: it needs no extra package (the dynamo
exporter pulls onnxscript), and for these static convolutional graphs it emits plain,
well-supported operators that every backend (OpenVINO, ONNX Runtime, TensorRT) parses.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch

import edgeseg
from edgeseg.engines.accuracy import MIN_AGREEMENT
from edgeseg.errors import ConfigError, ExportError
from edgeseg.export.deploy_graph import COLOR_ORDERS, DeployGraph
from edgeseg.export.parity import ParityReport, measure_parity
from edgeseg.models import get_architecture
from edgeseg.training.checkpoint import load_checkpoint, model_from_checkpoint

OPSET = 17
MIN_FP32_AGREEMENT = MIN_AGREEMENT["fp32"]
INPUT_NAME, MASK_NAME, CONFIDENCE_NAME = "frames", "mask", "confidence"


@dataclass
class ExportOptions:
    checkpoint: str
    output: str
    data: str | None = None  # parity images; default: the data set the checkpoint was trained on
    split: str = "val"
    input_order: str | None = None  # colour order of the camera's frames; default: the model's
    height: int | None = None
    width: int | None = None
    batch: int = 1
    dynamic: bool = False  # dynamic batch, height and width
    confidence: bool = True
    simplify: bool = True
    parity_images: int = 200
    min_agreement: float = MIN_FP32_AGREEMENT


@dataclass
class ExportResult:
    path: Path
    parity: ParityReport
    metadata: dict


def _metadata(meta: dict, opts: ExportOptions, height: int, width: int, input_order: str) -> dict:
    channels = meta["input"]["channels"]
    dims = ["batch" if opts.dynamic else opts.batch, "height" if opts.dynamic else height,
            "width" if opts.dynamic else width]
    outputs = [{"name": MASK_NAME, "dtype": "uint8", "shape": dims, "meaning": "class id per pixel"}]
    if opts.confidence:
        outputs.append({"name": CONFIDENCE_NAME, "dtype": "float32", "shape": dims,
                        "meaning": "max softmax probability per pixel"})
    return {
        "edgeseg.version": edgeseg.__version__,
        "edgeseg.classes": meta["classes"],
        "edgeseg.input": {"name": INPUT_NAME, "dtype": "uint8", "layout": "NHWC", "shape": dims + [channels],
                          "channels": channels, "color_order": input_order, "height": height, "width": width,
                          "resize": meta["input"].get("resize", "stretch-linear"), "dynamic": opts.dynamic,
                          "bit_depth": meta["input"].get("bit_depth", 16)},
        "edgeseg.outputs": outputs,
        "edgeseg.model": {"arch": meta["arch"], "arch_kwargs": meta.get("arch_kwargs", {}),
                          "stride": get_architecture(meta["arch"]).stride,
                          "normalization": meta["normalization"], "metrics": meta.get("metrics")},
    }


def _resolve(meta: dict, opts: ExportOptions) -> tuple[int, int, str]:
    height = opts.height or meta["input"]["height"]
    width = opts.width or meta["input"]["width"]
    stride = get_architecture(meta["arch"]).stride
    if height % stride or width % stride:
        raise ConfigError(f"input {width}x{height} is not a multiple of {meta['arch']}'s stride {stride}")
    model_order = meta["input"]["color_order"]
    input_order = opts.input_order or model_order
    if input_order not in COLOR_ORDERS:
        raise ConfigError(f"unknown colour order '{input_order}'", fix=f"choose one of {', '.join(COLOR_ORDERS)}")
    if (model_order == "gray") != (input_order == "gray"):
        raise ConfigError(f"the model takes {'1' if model_order == 'gray' else '3'}-channel frames; "
                          f"input order '{input_order}' does not fit",
                          fix="use --input-order gray for a grayscale model, bgr or rgb for a colour one")
    if opts.batch < 1:
        raise ConfigError(f"batch must be at least 1, not {opts.batch}")
    return height, width, input_order


def export_onnx(opts: ExportOptions, show_progress: bool = True) -> ExportResult:
    state = load_checkpoint(opts.checkpoint)
    meta = state["meta"]
    height, width, input_order = _resolve(meta, opts)
    data = opts.data or meta.get("data")
    if not data or not Path(data).is_dir():
        raise ConfigError(f"parity needs real images, and the training data set ({data}) is not here",
                          fix="give --data DIR with a labelled data set of the same classes")
    graph = DeployGraph(model_from_checkpoint(state), meta["normalization"]["mean"], meta["normalization"]["std"],
                        meta["input"]["color_order"], input_order, opts.confidence).eval()
    channels = meta["input"]["channels"]
    output = Path(opts.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.partial")
    names = [MASK_NAME, CONFIDENCE_NAME] if opts.confidence else [MASK_NAME]
    axes = {INPUT_NAME: {0: "batch", 1: "height", 2: "width"}}
    axes.update({n: {0: "batch", 1: "height", 2: "width"} for n in names})
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(graph, (torch.zeros(opts.batch, height, width, channels, dtype=torch.uint8),),
                              str(tmp), dynamo=False, opset_version=OPSET, input_names=[INPUT_NAME],
                              output_names=names, dynamic_axes=axes if opts.dynamic else None)
        model = onnx.load(str(tmp))
        if opts.simplify:
            import onnxslim

            model = onnxslim.slim(model)
        metadata = _metadata(meta, opts, height, width, input_order)
        del model.metadata_props[:]
        for key, value in metadata.items():
            model.metadata_props.add(key=key, value=json.dumps(value) if not isinstance(value, str) else value)
        model.producer_name, model.producer_version = "edgeseg", edgeseg.__version__
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, str(tmp))
        parity = measure_parity(tmp, graph, Path(data), opts.split, channels, height, width,
                                [c["name"] for c in meta["classes"]], opts.parity_images, show_progress,
                                meta["input"].get("bit_depth", 16))
        if parity.images == 0:
            raise ExportError(f"no {opts.split} images to measure parity on", data)
        if parity.pixel_agreement < opts.min_agreement:
            raise ExportError(f"exported graph agrees with PyTorch on {100 * parity.pixel_agreement:.3f} % of "
                              f"pixels, below the {100 * opts.min_agreement:.1f} % required at fp32", output,
                              "this is a bug in the exporter or an unsupported layer: please report it")
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(output, parity, metadata)
