"""OpenVINO: the ONNX graph converted to an IR kept in the bundle, compiled with a latency or
throughput hint, threads, streams and an explicit inference precision, with the compiled model
cached outside the bundle and checked before use (``model_cache.py``). Inputs and outputs are
bound zero-copy to the preallocated buffers; one reused infer request per slot serves both the
latency path and throughput mode, where requests are started asynchronously and collected in
order in the caller's thread (``InOrderRequests``; an AsyncInferQueue would call back into
Python from OpenVINO's threads).

The latency path calls the compiled binding underneath OpenVINO's Python wrapper, with shared
outputs: the wrapper's ``infer`` copies every output into new arrays, and ``start_async`` then
``wait`` keeps a little memory per call (docs/decisions/0012-openvino-binding.md). The binding
returns views of our own buffers and keeps nothing."""

from __future__ import annotations

import json
from pathlib import Path

from edgeseg.cpu import native_bf16
from edgeseg.engines import model_cache
from edgeseg.engines.base import InOrderRequests, IOSpec, merge_options, require_module
from edgeseg.engines.bundle import Bundle
from edgeseg.errors import ConfigError, EngineError, first_line

NAME = "openvino"
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16", "int8")
HINTS = ("latency", "throughput")
DEFAULT_OPTIONS = {"device": "CPU", "hint": "latency", "threads": None, "streams": None}
# Set explicitly, never left to the CPU (docs/decisions/0002-openvino-inference-precision.md):
# on AMX, OpenVINO would run an fp32 graph in bf16; int8 graphs' float layers are faster in bf16.
_INFERENCE_PRECISION = {"fp32": "f32", "fp16": "f16", "bf16": "bf16", "int8": "bf16"}
_CAPABILITY = {"f16": "FP16", "bf16": "BF16"}
MODEL_FILES = ("model.xml", "model.bin")
_NO_INPUTS: dict = {}  # inputs are bound once as shared tensors; nothing is passed per call


def _ov():
    return require_module("openvino", "OpenVINO", "pip install 'edgeseg[openvino]'")


def version() -> str:
    return _ov().get_version().split("-")[0]


def fingerprint(engine_info: dict) -> dict:
    """What the IR and its compiled form depend on: the OpenVINO release and the device."""
    return {"openvino": version(), "device": engine_info["options"]["device"]}


def _options(base: dict, overrides: dict) -> dict:
    options = merge_options("OpenVINO", DEFAULT_OPTIONS, base, overrides)
    if options["hint"] not in HINTS:
        raise ConfigError(f"unknown OpenVINO hint '{options['hint']}'", fix=f"choose {' or '.join(HINTS)}")
    return options


def inference_precision(precision: str, device: str) -> str:
    wanted = _INFERENCE_PRECISION[precision]
    if wanted == "f16" and device.upper().startswith("CPU"):
        # f16 execution ran slower than f32 on CPUs (docs/decisions/0002): the fp16 graph runs in f32
        return "f32"
    capability = _CAPABILITY.get(wanted)
    if capability and not _device_runs(device, capability):
        if precision == "bf16":
            raise EngineError(f"{device} cannot run bf16 natively (it needs AMX or AVX-512 BF16)",
                              fix="use --precision int8 or fp32 on this machine")
        return "f32"  # the graph still runs, its float layers computed in f32
    return wanted


def _device_runs(device: str, capability: str) -> bool:
    if device.upper() == "CPU" and capability == "BF16":
        return native_bf16()  # one answer for training, the demo and this engine (edgeseg/cpu.py)
    return capability in _ov().Core().get_property(device, "OPTIMIZATION_CAPABILITIES")


def build(graph: Path, out: Path, precision: str, options: dict, input_spec: dict | None = None) -> dict:
    """Convert the (precision) ONNX graph to an IR in ``out``; return the engine section of the manifest."""
    if precision not in PRECISIONS:
        raise ConfigError(f"OpenVINO does not take precision {precision}", fix=f"choose one of {', '.join(PRECISIONS)}")
    ov = _ov()
    options = _options({}, options)
    try:
        model = ov.convert_model(str(graph))
    except Exception as e:  # OpenVINO raises its own exception types for unreadable graphs
        raise EngineError(f"OpenVINO cannot convert the graph ({first_line(e)})", graph) from None
    _save(model, out)
    return {"files": list(MODEL_FILES), "options": options,
            "inference_precision": inference_precision(precision, options["device"])}


def _save(model, out: Path) -> None:
    """The bundle's IR, with Model API's model_info, as compile and compile --from write it."""
    add_model_info(model)
    # compress_to_fp16 would halve an fp32 model's weights on disk behind the precision's back
    _ov().save_model(model, str(out / MODEL_FILES[0]), compress_to_fp16=False)


def add_model_info(model) -> None:
    """OpenVINO Model API's ``model_info`` in the IR, from the edgeseg metadata OpenVINO kept from the
    ONNX graph: the model type, the labels, and that the normalisation is inside (frames go in as
    uint8 at the model's size). Model API's SegmentationModel itself takes the one-output form that
    ``export-serving --to model-api`` writes; DL Streamer and OVMS clients read the labels here."""
    try:
        classes = json.loads(str(model.get_rt_info(["framework", "edgeseg.classes"]).astype(str)))
        spec = json.loads(str(model.get_rt_info(["framework", "edgeseg.input"]).astype(str)))
    except Exception:  # a graph without edgeseg metadata: nothing to say
        return
    info = {"model_type": "Segmentation", "labels": " ".join(c["name"].replace(" ", "_") for c in classes),
            "embedded_processing": "True", "orig_height": str(spec["height"]), "orig_width": str(spec["width"])}
    for key, value in info.items():
        model.set_rt_info(value, ["model_info", key])


def rebuild(bundle: Bundle, out: Path) -> dict:
    """This OpenVINO's IR for a bundle built with another release, from the bundle alone: the fp32
    graph (fp32, bf16) converted again from its ``reference.onnx``, the fp16 and int8 graphs (int8's
    quantize nodes and ranges included, so no calibration) read from its IR and written again."""
    ov, precision = _ov(), bundle.precision
    reference = bundle.manifest.get("source", {}).get("reference")
    try:
        if precision in ("fp32", "bf16") and reference:
            model = ov.convert_model(str(bundle.file(reference)))
        else:
            model = ov.Core().read_model(str(bundle.file(MODEL_FILES[0])))
    except Exception as e:  # OpenVINO raises its own exception types for unreadable graphs
        raise EngineError(f"OpenVINO {version()} cannot read the bundle's graph ({first_line(e)})", bundle.path,
                          "rebuild it from the exported ONNX graph with edgeseg compile") from None
    _save(model, out)
    info = bundle.manifest["engine"]
    return {**info, "files": list(MODEL_FILES),
            "inference_precision": inference_precision(precision, info["options"]["device"])}


class OpenVinoEngine(InOrderRequests):
    backend = NAME

    def __init__(self, bundle: Bundle, spec: IOSpec, requests: int = 1, **overrides):
        super().__init__(spec, requests)
        ov = _ov()
        info = bundle.manifest["engine"]
        self.options = _options(info["options"], overrides)
        config = {"PERFORMANCE_HINT": self.options["hint"].upper(),
                  "INFERENCE_PRECISION_HINT": info["inference_precision"]}
        if self.options["threads"]:
            config["INFERENCE_NUM_THREADS"] = int(self.options["threads"])
        if self.options["streams"]:
            config["NUM_STREAMS"] = int(self.options["streams"])
        key = model_cache.cache_key(bundle.manifest["manifest_sha256"], {
            "backend": NAME, "version": version(), "device": self.options["device"], "config": config})
        cache = self.cache_dir = model_cache.checked_cache(NAME, key)  # None: nowhere to write, compiled each load
        if cache is not None:
            config["CACHE_DIR"] = str(cache)
        core = ov.Core()
        try:
            model = core.read_model(str(bundle.file(MODEL_FILES[0])))
            if spec.dynamic:
                model.reshape({spec.input_name: list(spec.input_shape)})
            self.compiled = core.compile_model(model, self.options["device"], config)
        except Exception as e:
            raise EngineError(f"OpenVINO cannot load the model ({first_line(e)})", bundle.path,
                              "rebuild the bundle with edgeseg compile") from None
        model_cache.record(cache, key)
        from openvino._pyopenvino import InferRequest as RequestBinding

        self._infer_request, self._start_request = RequestBinding.infer, RequestBinding.start_async
        self._requests = [self.compiled.create_infer_request() for _ in range(requests)]
        for i, request in enumerate(self._requests):
            self._bind(request, i)

    def _bind(self, request, slot: int) -> None:
        ov, spec = _ov(), self.spec
        request.set_tensor(spec.input_name, ov.Tensor(self.inputs[slot], shared_memory=True))
        request.set_tensor(spec.mask_name, ov.Tensor(self.masks[slot], shared_memory=True))
        if spec.confidence_name:
            request.set_tensor(spec.confidence_name, ov.Tensor(self.confidences[slot], shared_memory=True))

    def infer(self, request: int = 0) -> None:
        self._infer_request(self._requests[request], _NO_INPUTS, True, False)  # share outputs, no strings

    def _start(self, request: int) -> None:
        self._start_request(self._requests[request], _NO_INPUTS, None)  # no Python callback

    def _wait(self, request: int) -> None:
        self._requests[request].wait()


def load(bundle: Bundle, spec: IOSpec, requests: int = 1, **overrides) -> OpenVinoEngine:
    return OpenVinoEngine(bundle, spec, requests, **overrides)
