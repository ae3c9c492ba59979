"""A remote engine: frames sent to a KServe v2 inference server (Triton, OpenVINO Model Server)
over HTTP or gRPC with ``tritonclient``, behind the same Engine contract as the local backends,
so that ``run`` and ``serve`` offload inference for many cameras to one server.

The bundle stays local: its manifest says what the model takes and gives (classes, input size,
colour order) and the server is checked against it when the engine opens (input and output
names, types and shapes; on Triton also the manifest checksum that ``export-serving`` wrote into
config.pbtxt). The engine's buffers are made once; tritonclient serialises the input buffer into
each request and the outputs are copied into the mask and confidence buffers (no shared memory:
the server may be on another machine). A server that does not answer is retried with backoff,
as a camera is, for ``retry_seconds``; then the run ends with an error (a station restarts the
pipeline, which tries again).

URLs: ``kserve://HOST:PORT/MODEL[/VERSION]`` (HTTP), ``kserve+grpc://HOST:PORT/MODEL[/VERSION]``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np

from edgeseg.engines.base import InOrderRequests, IOSpec, require_module
from edgeseg.engines.bundle import Bundle
from edgeseg.errors import ConfigError, EngineError, first_line, redact

log = logging.getLogger(__name__)
SCHEMES = {"kserve": "http", "kserve+http": "http", "kserve+grpc": "grpc"}
MANIFEST_PARAMETER = "edgeseg_manifest_sha256"
_INSTALL = "pip install 'edgeseg[serving]'"


@dataclass(frozen=True)
class RemoteTarget:
    protocol: str  # http or grpc
    address: str  # host:port
    model: str
    version: str = ""

    @classmethod
    def parse(cls, url: str) -> RemoteTarget:
        parts = urlsplit(url)
        path = [p for p in parts.path.split("/") if p]
        if parts.scheme not in SCHEMES or not parts.hostname or not parts.port or len(path) not in (1, 2):
            raise ConfigError(f"not a remote engine address: {redact(url)}",
                              fix="write kserve://HOST:PORT/MODEL (HTTP) or kserve+grpc://HOST:PORT/MODEL, "
                                  "optionally /VERSION after the model")
        return cls(SCHEMES[parts.scheme], f"{parts.hostname}:{parts.port}", path[0], path[1] if len(path) > 1 else "")

    def __str__(self) -> str:
        return f"{self.protocol}://{self.address}/{self.model}" + (f"/{self.version}" if self.version else "")


def is_remote(url: object) -> bool:
    return isinstance(url, str) and url.split("://", 1)[0] in SCHEMES


class _Unreachable(Exception):
    """The server did not answer (refused, reset, timed out, unavailable)."""


def _client_module(protocol: str):
    return require_module(f"tritonclient.{protocol}", "tritonclient", _INSTALL)


def _unreachable(error: BaseException) -> bool:
    if isinstance(error, _Unreachable | OSError | ConnectionError | TimeoutError):
        return True
    text = str(error).lower()
    return any(word in text for word in ("unavailable", "connect", "refused", "reset", "timed out", "broken pipe",
                                         "deadline"))


class KServeEngine(InOrderRequests):
    backend = "kserve"

    def __init__(self, bundle: Bundle, spec: IOSpec, url: str, requests: int = 1, retry_seconds: float = 30.0):
        super().__init__(spec, requests)
        self.target = RemoteTarget.parse(url)
        self.retry_seconds = retry_seconds
        self.reconnects = 0  # outages survived
        self._module = _client_module(self.target.protocol)
        self._client = self._connect()
        self._check(bundle)
        self._io = [self._request_io(slot) for slot in range(requests)]
        self._pending: list = [None] * requests

    def _connect(self):
        m, target = self._module, self.target
        self._client_thread = threading.get_ident()
        try:
            client = (m.InferenceServerClient(target.address, concurrency=self.requests, connection_timeout=10.0,
                                              network_timeout=60.0) if target.protocol == "http"
                      else m.InferenceServerClient(target.address))
        except Exception as e:
            raise EngineError(f"cannot make a client for {target} ({first_line(e)})") from None

        def ready() -> None:
            if not client.is_model_ready(target.model, target.version):
                raise _Unreachable(f"model {target.model} is not ready")

        self._retrying(ready)
        return client

    def _retrying(self, call):
        """``call()``, again with backoff while the server does not answer, for ``retry_seconds``."""
        deadline, delay, warned = time.monotonic() + self.retry_seconds, 0.25, False
        while True:
            try:
                return call()
            except Exception as e:
                if not _unreachable(e):
                    raise self._refused(e) from None
                if time.monotonic() + delay > deadline:
                    raise EngineError(f"the server at {self.target} does not answer ({first_line(e)})",
                                      fix=f"start it, or check the address; tried for {self.retry_seconds:g} s") \
                        from None
                if not warned:
                    log.warning("server %s does not answer (%s); retrying", self.target, first_line(e))
                    warned = True
                    self.reconnects += 1
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _refused(self, error: BaseException) -> EngineError:
        return EngineError(f"the server at {self.target} refused the request ({first_line(error)})")

    def _as_json(self) -> dict:
        """How to ask for a dict: the gRPC client answers in protobuf messages unless told."""
        return {"as_json": True} if self.target.protocol == "grpc" else {}

    def _check(self, bundle: Bundle) -> None:
        """The served model takes and gives what the bundle's manifest says."""
        meta = self._retrying(lambda: self._client.get_model_metadata(self.target.model, self.target.version,
                                                                      **self._as_json()))
        problem = metadata_mismatch(meta, self.spec)
        if problem:
            raise EngineError(f"{self.target} does not serve this bundle's model: {problem}", bundle.path,
                              "export the bundle with edgeseg export-serving and serve that")
        served = self._manifest_checksum()
        if served is not None and served != bundle.manifest["manifest_sha256"]:
            raise EngineError(f"{self.target} serves another build of the model (manifest {served[:12]}…, "
                              f"this bundle {bundle.manifest['manifest_sha256'][:12]}…)", bundle.path,
                              "export this bundle with edgeseg export-serving, or run with the bundle served")

    def _manifest_checksum(self) -> str | None:
        """The manifest checksum in the served model's config (Triton); None where it has none."""
        try:
            config = self._client.get_model_config(self.target.model, self.target.version, **self._as_json())
        except Exception:  # OpenVINO Model Server does not give model configs
            return None
        parameters = config.get("config", config).get("parameters", {})
        return parameters.get(MANIFEST_PARAMETER, {}).get("string_value")

    def _request_io(self, slot: int) -> tuple[list, list]:
        m, spec, http = self._module, self.spec, self.target.protocol == "http"
        inputs = [m.InferInput(spec.input_name, list(spec.input_shape), "UINT8")]
        names = [spec.mask_name] + ([spec.confidence_name] if spec.confidence_name else [])
        outputs = [m.InferRequestedOutput(name, binary_data=True) if http else m.InferRequestedOutput(name)
                   for name in names]
        return inputs, outputs

    def _here(self):
        """The client for this thread: tritonclient's HTTP client (gevent) serves only the thread
        that made it, so a session that infers in another thread gets its own."""
        if self.target.protocol == "http" and threading.get_ident() != self._client_thread:
            self._client = self._connect()
        return self._client

    def _loaded(self, request: int) -> tuple[list, list]:
        """The request's inputs, holding its input buffer's frame, and its outputs."""
        inputs, outputs = self._io[request]
        inputs[0].set_data_from_numpy(self.inputs[request])
        return inputs, outputs

    def _send(self, request: int):
        inputs, outputs = self._loaded(request)
        return self._here().infer(self.target.model, inputs, model_version=self.target.version, outputs=outputs)

    def _fill(self, request: int, result) -> None:
        np.copyto(self.masks[request], result.as_numpy(self.spec.mask_name).reshape(self.spec.output_shape))
        confidence = self.confidences[request]
        if confidence is not None and self.spec.confidence_name:
            np.copyto(confidence, result.as_numpy(self.spec.confidence_name).reshape(self.spec.output_shape))

    def infer(self, request: int = 0) -> None:
        self._fill(request, self._retrying(lambda: self._send(request)))

    def _start(self, request: int) -> None:
        inputs, outputs = self._loaded(request)
        model, version = self.target.model, self.target.version
        try:
            if self.target.protocol == "http":
                self._pending[request] = self._here().async_infer(model, inputs, model_version=version,
                                                                  outputs=outputs)
            else:
                done: queue.SimpleQueue = queue.SimpleQueue()
                self._here().async_infer(model, inputs, lambda result, error: done.put((result, error)),
                                         model_version=version, outputs=outputs)
                self._pending[request] = done
        except Exception as e:
            if not _unreachable(e):
                raise self._refused(e) from None
            self._pending[request] = None  # sent again, with retries, when it is collected

    def _wait(self, request: int) -> None:
        pending, self._pending[request] = self._pending[request], None
        try:
            if pending is None:
                raise _Unreachable("not sent")
            if isinstance(pending, queue.SimpleQueue):
                result, error = pending.get()
                if error is not None:
                    raise error
            else:
                result = pending.get_result()
        except Exception as e:
            if not _unreachable(e):
                raise self._refused(e) from None
            result = self._retrying(lambda: self._send(request))
        self._fill(request, result)

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:  # closing a client whose server is gone
            pass


def metadata_mismatch(meta: dict, spec: IOSpec) -> str | None:
    """What in the served model's KServe v2 metadata differs from the bundle's IO (None: nothing)."""
    inputs = {i["name"]: i for i in meta.get("inputs", [])}
    outputs = {o["name"]: o for o in meta.get("outputs", [])}
    if spec.input_name not in inputs:
        return f"no input '{spec.input_name}' (it takes {', '.join(inputs) or 'nothing'})"
    frame = inputs[spec.input_name]
    if frame.get("datatype") != "UINT8":
        return f"input '{spec.input_name}' is {frame.get('datatype')}, not UINT8"
    shape = [int(d) for d in frame.get("shape", [])]
    wanted = [spec.height, spec.width, spec.channels]
    if len(shape) < 3 or any(d not in (-1, w) for d, w in zip(shape[-3:], wanted, strict=True)):
        return f"input shape {shape}, where the bundle's frames are {'x'.join(map(str, wanted))}"
    for name in (spec.mask_name, spec.confidence_name):
        if name and name not in outputs:
            return f"no output '{name}' (it gives {', '.join(outputs) or 'nothing'})"
    return None


def open_remote(bundle: Bundle, url: str, spec: IOSpec, requests: int = 1) -> KServeEngine:
    return KServeEngine(bundle, spec, url, requests)
