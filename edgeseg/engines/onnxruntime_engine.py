"""ONNX Runtime: the graph optimised once at build time and saved in the bundle, run with spin-wait
off and a fixed thread count, through IOBinding onto the preallocated buffers. Throughput mode
runs one persistent worker thread per request (ONNX Runtime releases the GIL while it runs)."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

from edgeseg.engines.base import Done, Engine, IOSpec, merge_options, require_module
from edgeseg.engines.bundle import Bundle
from edgeseg.errors import ConfigError, EngineError, first_line

NAME = "onnxruntime"
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
DEFAULT_OPTIONS = {"provider": "CPUExecutionProvider", "threads": None}
# compile gives this backend the confidence head without a Softmax across channels (export/head.py)
SOFTMAX_FREE_HEAD = True
MODEL_FILE = "model.onnx"


def _ort():
    return require_module("onnxruntime", "ONNX Runtime", "pip install 'edgeseg[onnxruntime]'")


def version() -> str:
    return _ort().__version__


def fingerprint(engine_info: dict) -> dict:
    """The saved optimised graph holds fused, provider-specific nodes of this ONNX Runtime release."""
    return {"onnxruntime": version(), "provider": engine_info["options"]["provider"]}


def _options(base: dict, overrides: dict) -> dict:
    return merge_options("ONNX Runtime", DEFAULT_OPTIONS, base, overrides)


def _session_options(threads: int | None):
    ort = _ort()
    so = ort.SessionOptions()
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.inter_op_num_threads = 1
    if threads:
        so.intra_op_num_threads = int(threads)
    # Spinning threads burn the cores the capture and post-processing threads need.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return so


def build(graph: Path, out: Path, precision: str, options: dict, input_spec: dict | None = None) -> dict:
    """Optimise the graph for this provider and save it as the bundle's model."""
    if precision not in PRECISIONS:
        raise ConfigError(f"ONNX Runtime does not take precision {precision}",
                          fix=f"choose one of {', '.join(PRECISIONS)} (bf16 is an OpenVINO CPU mode)")
    ort = _ort()
    options = _options({}, options)
    so = _session_options(options["threads"])
    # Extended, not all: layout transforms (NCHWc) are specific to the build machine's CPU and
    # are applied again at load.
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(out / MODEL_FILE)
    try:
        ort.InferenceSession(str(graph), so, providers=[options["provider"]])
    except Exception as e:
        raise EngineError(f"ONNX Runtime cannot load the graph ({first_line(e)})", graph) from None
    return {"files": [MODEL_FILE], "options": options}


class OnnxRuntimeEngine(Engine):
    backend = NAME

    def __init__(self, bundle: Bundle, spec: IOSpec, requests: int = 1, **overrides):
        super().__init__(spec, requests)
        ort = _ort()
        self.options = _options(bundle.manifest["engine"]["options"], overrides)
        so = _session_options(self.options["threads"])
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(bundle.file(MODEL_FILE)), so, providers=[self.options["provider"]])
        except Exception as e:
            raise EngineError(f"ONNX Runtime cannot load the model ({first_line(e)})", bundle.path,
                              "rebuild the bundle with edgeseg compile") from None
        self._run_options = ort.RunOptions()  # made once: a default one is built on every call otherwise
        self._bindings = []
        for i in range(requests):
            binding = self.session.io_binding()
            binding.bind_ortvalue_input(spec.input_name, ort.OrtValue.ortvalue_from_numpy(self.inputs[i]))
            binding.bind_ortvalue_output(spec.mask_name, ort.OrtValue.ortvalue_from_numpy(self.masks[i]))
            if spec.confidence_name:
                binding.bind_ortvalue_output(spec.confidence_name,
                                             ort.OrtValue.ortvalue_from_numpy(self.confidences[i]))
            self._bindings.append(binding)
        self._idle: queue.SimpleQueue[int] = queue.SimpleQueue()
        for i in range(requests):
            self._idle.put(i)
        self._go = [threading.Event() for _ in range(requests)]
        self._on_done: list[Done | None] = [None] * requests
        self._in_flight = 0
        self._settled = threading.Condition()
        self._error: BaseException | None = None
        self._closing = False
        self._workers: list[threading.Thread] = []

    def infer(self, request: int = 0) -> None:
        self.session.run_with_iobinding(self._bindings[request], self._run_options)

    def acquire(self) -> int:
        self._raise_pending()
        if not self._workers:
            self._workers = [threading.Thread(target=self._work, args=(i,), daemon=True, name=f"ort-request-{i}")
                             for i in range(self.requests)]
            for worker in self._workers:
                worker.start()
        return self._idle.get()

    def submit(self, request: int, on_done: Done) -> None:
        self._on_done[request] = on_done
        with self._settled:
            self._in_flight += 1
        self._go[request].set()

    def _work(self, slot: int) -> None:
        go = self._go[slot]
        while True:
            go.wait()
            go.clear()
            if self._closing:
                return
            try:
                self.session.run_with_iobinding(self._bindings[slot], self._run_options)
                done = self._on_done[slot]
                if done is not None:
                    done(slot)
            except BaseException as e:  # raised again in the submitting thread
                self._error = self._error or e
            with self._settled:
                self._in_flight -= 1
                self._settled.notify_all()
            self._idle.put(slot)

    def drain(self) -> None:
        with self._settled:
            self._settled.wait_for(lambda: self._in_flight == 0)
        self._raise_pending()

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def close(self) -> None:
        if self._workers:
            self.drain()
            self._closing = True
            for go in self._go:
                go.set()
            for worker in self._workers:
                worker.join(timeout=5)
            self._workers = []


def load(bundle: Bundle, spec: IOSpec, requests: int = 1, **overrides) -> OnnxRuntimeEngine:
    return OnnxRuntimeEngine(bundle, spec, requests, **overrides)
