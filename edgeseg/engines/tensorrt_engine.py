"""TensorRT, written for the TensorRT 10 and 11 Python APIs.

Build: a strongly typed network parsed from the ONNX graph, so the precision is the graph's own
(fp16 weights, int8 Q/DQ nodes): no builder precision flags and no calibrators, which TensorRT 11
removed. An optimization profile when height and width are dynamic, a timing cache kept in the
bundle, and the serialized plan.

Run: cuda-python with pinned host buffers (the Engine's numpy arrays live in them), device
buffers, one stream and one execution context per request, ``set_tensor_address`` and
``execute_async_v3``, and optionally the copy-in, execute, copy-out sequence captured once as a
CUDA graph and replayed per frame.

TensorRT and cuda-python are imported only here; where either or a GPU is missing, a clear error.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from edgeseg.engines.base import InOrderRequests, IOSpec, merge_options, require_module
from edgeseg.engines.bundle import Bundle
from edgeseg.errors import ConfigError, EngineError

NAME = "tensorrt"
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
DEFAULT_OPTIONS = {"workspace_mb": 1024, "cuda_graph": True, "max_scale": 2.0}
PLAN_FILE, TIMING_CACHE_FILE = "model.plan", "timing.cache"


def _trt():
    return require_module("tensorrt", "TensorRT", "build and run TensorRT bundles on the Jetson or GPU machine "
                                                  "itself (JetPack ships TensorRT; elsewhere: pip install tensorrt)")


def _cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python 12.6 and later
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError:
            raise EngineError("cuda-python is not installed",
                              fix="pip install 'edgeseg[tensorrt]' with cuda-python pinned to this CUDA") from None
    return cudart


def _check(result):
    """cuda-python returns (error, *values): raise on error, return the values."""
    error, *values = result if isinstance(result, tuple) else (result,)
    if int(error) != 0:
        cudart = _cudart()
        _, name = cudart.cudaGetErrorName(error)
        raise EngineError(f"CUDA call failed: {name.decode() if isinstance(name, bytes) else name}",
                          fix="check that a GPU is present and the driver works (nvidia-smi)")
    return values[0] if len(values) == 1 else (values or None)


def gpu_fingerprint() -> dict:
    cudart = _cudart()
    count = _check(cudart.cudaGetDeviceCount())
    if count < 1:
        raise EngineError("no CUDA GPU found", fix="run TensorRT bundles on a machine with an NVIDIA GPU")
    device = _check(cudart.cudaGetDevice())
    props = _check(cudart.cudaGetDeviceProperties(device))
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return {"cuda_runtime": _check(cudart.cudaRuntimeGetVersion()), "gpu": name.strip("\x00 "),
            "compute_capability": f"{props.major}.{props.minor}"}


def version() -> str:
    return str(_trt().__version__)


def fingerprint(engine_info: dict) -> dict:
    """A plan runs only on the TensorRT release, CUDA and GPU model it was built for."""
    return {"tensorrt": _trt().__version__, **gpu_fingerprint()}


def _options(base: dict, overrides: dict) -> dict:
    return merge_options("TensorRT", DEFAULT_OPTIONS, base, overrides)


def _network_flags(trt) -> int:
    # STRONGLY_TYPED is a flag in TensorRT 10 and always on (the flag kept, ignored) in 11.
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return 0 if flag is None else 1 << int(flag)


def profile_shapes(input_shape: list, height: int, width: int, max_scale: float) -> tuple[tuple, tuple, tuple]:
    """min, opt and max NHWC shapes for a dynamic input: from a quarter of the trained size (at
    least 32 px) up to ``max_scale`` times it, batch 1 up to the given static batch or 8."""
    batch = input_shape[0] if isinstance(input_shape[0], int) else None
    channels = input_shape[3]
    max_batch = batch or 8
    low = (batch or 1, max(32, height // 4 // 32 * 32), max(32, width // 4 // 32 * 32), channels)
    opt = (batch or 1, height, width, channels)
    high = (max_batch, int(height * max_scale) // 32 * 32, int(width * max_scale) // 32 * 32, channels)
    return low, opt, high


def build(graph: Path, out: Path, precision: str, options: dict, input_spec: dict | None = None) -> dict:
    if precision not in PRECISIONS:
        raise ConfigError(f"TensorRT does not take precision {precision}", fix=f"choose one of {', '.join(PRECISIONS)}")
    trt = _trt()
    options = _options({}, options)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(graph)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"TensorRT cannot parse the graph ({errors[:300]})", graph)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options["workspace_mb"]) << 20)
    cache_path = out / TIMING_CACHE_FILE
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    tensor = network.get_input(0)
    if input_spec and input_spec.get("dynamic"):
        profile = builder.create_optimization_profile()
        profile.set_shape(tensor.name, *profile_shapes(input_spec["shape"], input_spec["height"],
                                                       input_spec["width"], options["max_scale"]))
        config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineError("TensorRT could not build an engine from the graph (see its log above)", graph)
    (out / PLAN_FILE).write_bytes(memoryview(plan))
    cache_path.write_bytes(memoryview(config.get_timing_cache().serialize()))
    return {"files": [PLAN_FILE, TIMING_CACHE_FILE], "options": options}


class _Slot:
    """One request: an execution context, a stream, device buffers and an optional CUDA graph."""

    def __init__(self, context, stream, device: dict, host: dict):
        self.context, self.stream, self.device, self.host = context, stream, device, host
        self.graph_exec = None


class TensorRtEngine(InOrderRequests):
    backend = NAME

    def __init__(self, bundle: Bundle, spec: IOSpec, requests: int = 1, **overrides):
        self._cudart = _cudart()
        self._pinned: list[int] = []
        trt = _trt()
        super().__init__(spec, requests)  # allocates pinned host buffers through _buffer()
        self.options = _options(bundle.manifest["engine"]["options"], overrides)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(bundle.file(PLAN_FILE).read_bytes())
        if self.engine is None:
            raise EngineError("TensorRT cannot deserialize the plan", bundle.file(PLAN_FILE),
                              f"rebuild the bundle on this machine with edgeseg compile --backend {NAME}")
        cudart = self._cudart
        self._slots: list[_Slot] = []
        names: list[tuple[str, list]] = [(spec.input_name, self.inputs), (spec.mask_name, self.masks)]
        if spec.confidence_name:
            names.append((spec.confidence_name, self.confidences))
        for i in range(requests):
            context = self.engine.create_execution_context()
            if spec.dynamic:
                context.set_input_shape(spec.input_name, spec.input_shape)
            stream = _check(cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking))
            device, host = {}, {}
            for name, arrays in names:
                host[name] = arrays[i]
                device[name] = _check(cudart.cudaMalloc(arrays[i].nbytes))
                if not context.set_tensor_address(name, device[name]):
                    raise EngineError(f"the plan has no tensor named {name}", bundle.path,
                                      "rebuild the bundle from an edgeseg export")
            self._slots.append(_Slot(context, stream, device, host))
        self._outputs = [n for n, _ in names[1:]]
        if self.options["cuda_graph"]:
            for slot in self._slots:
                self._capture(slot)

    def _buffer(self, shape, dtype) -> np.ndarray:
        """Page-locked host memory, so copies to and from the GPU run asynchronously at full speed."""
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        pointer = _check(self._cudart.cudaMallocHost(nbytes))
        self._pinned.append(pointer)
        raw = (ctypes.c_uint8 * nbytes).from_address(pointer)
        array = np.frombuffer(raw, dtype=dtype).reshape(shape)
        array[...] = 0
        return array

    def _enqueue(self, slot: _Slot) -> None:
        cudart, name_in = self._cudart, self.spec.input_name
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        source = slot.host[name_in]
        _check(cudart.cudaMemcpyAsync(slot.device[name_in], source.ctypes.data, source.nbytes, h2d, slot.stream))
        if not slot.context.execute_async_v3(int(slot.stream)):  # TensorRT takes the raw stream handle
            raise EngineError("TensorRT failed to enqueue the inference")
        for name in self._outputs:
            target = slot.host[name]
            _check(cudart.cudaMemcpyAsync(target.ctypes.data, slot.device[name], target.nbytes, d2h, slot.stream))

    def _capture(self, slot: _Slot) -> None:
        """Record copy-in, execute and copy-out once; each frame then costs one graph launch."""
        cudart = self._cudart
        self._enqueue(slot)  # a first run settles TensorRT's deferred setup before capture
        _check(cudart.cudaStreamSynchronize(slot.stream))
        mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        _check(cudart.cudaStreamBeginCapture(slot.stream, mode))
        self._enqueue(slot)
        graph = _check(cudart.cudaStreamEndCapture(slot.stream))
        slot.graph_exec = _check(cudart.cudaGraphInstantiate(graph, 0))
        _check(cudart.cudaGraphDestroy(graph))

    def _start(self, request: int) -> None:
        slot = self._slots[request]
        if slot.graph_exec is not None:
            _check(self._cudart.cudaGraphLaunch(slot.graph_exec, slot.stream))
        else:
            self._enqueue(slot)

    def _wait(self, request: int) -> None:
        _check(self._cudart.cudaStreamSynchronize(self._slots[request].stream))

    def infer(self, request: int = 0) -> None:
        self._start(request)
        self._wait(request)

    def close(self) -> None:
        cudart = getattr(self, "_cudart", None)
        if cudart is None:
            return
        for slot in getattr(self, "_slots", []):
            cudart.cudaStreamSynchronize(slot.stream)
            if slot.graph_exec is not None:
                cudart.cudaGraphExecDestroy(slot.graph_exec)
            for pointer in slot.device.values():
                cudart.cudaFree(pointer)
            cudart.cudaStreamDestroy(slot.stream)
        self._slots = []
        # The numpy views stay valid only while the pinned memory lives: copy out before freeing.
        self.inputs = [np.array(a) for a in self.inputs]
        self.masks = [np.array(a) for a in self.masks]
        self.confidences = [None if a is None else np.array(a) for a in self.confidences]
        for pointer in self._pinned:
            cudart.cudaFreeHost(pointer)
        self._pinned = []


def load(bundle: Bundle, spec: IOSpec, requests: int = 1, **overrides) -> TensorRtEngine:
    return TensorRtEngine(bundle, spec, requests, **overrides)
