"""The one Engine contract every backend keeps.

Buffers are allocated once, at load, C-contiguous: per request slot an input (N, H, W, C) uint8
in the camera's own pixel order, a mask (N, H, W) uint8 and optionally a confidence (N, H, W)
float32. The backend binds them zero-copy, so ``infer()`` reads the input where the caller wrote
it and writes the outputs where the caller reads them; it allocates nothing in the steady state.

Throughput mode keeps several requests in flight: ``acquire()`` hands out an idle slot whose
input the caller fills, ``submit(slot, on_done)`` starts it, and ``on_done(slot)`` runs once its
outputs are filled; the slot is reused only after ``on_done`` returns. Backends whose requests
can be waited on (OpenVINO, TensorRT) run ``on_done`` in the caller's thread, from ``acquire``
and ``drain`` (``InOrderRequests``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from edgeseg.errors import ConfigError, EngineError

Done = Callable[[int], None]
EngineT = TypeVar("EngineT", bound="Engine")


@dataclass(frozen=True)
class IOSpec:
    """What an engine takes and gives, from the bundle manifest."""
    input_name: str
    batch: int
    height: int
    width: int
    channels: int
    color_order: str
    mask_name: str
    confidence_name: str | None
    dynamic: bool

    @classmethod
    def from_manifest(cls, manifest: dict, batch: int | None = None, height: int | None = None,
                      width: int | None = None) -> IOSpec:
        spec = manifest["input"]
        outputs = {o["name"]: o for o in manifest["outputs"]}
        static_batch = spec["shape"][0] if isinstance(spec["shape"][0], int) else 1
        if not spec.get("dynamic") and any(v is not None and v != d for v, d in
                                           ((batch, static_batch), (height, spec["height"]),
                                            (width, spec["width"]))):
            raise EngineError(f"this bundle has a static input of {static_batch}x{spec['height']}x{spec['width']}",
                              fix="export with --dynamic and compile again to run other sizes")
        return cls(spec["name"], batch or static_batch, height or spec["height"], width or spec["width"],
                   spec["channels"], spec["color_order"], "mask",
                   "confidence" if "confidence" in outputs else None, bool(spec.get("dynamic")))

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.height, self.width, self.channels)

    @property
    def output_shape(self) -> tuple[int, int, int]:
        return (self.batch, self.height, self.width)


class Engine(ABC):
    """A compiled model with preallocated IO. Subclasses bind the buffers and run requests."""

    backend = ""

    def __init__(self, spec: IOSpec, requests: int = 1):
        if requests < 1:
            raise EngineError(f"requests must be at least 1, not {requests}")
        self.spec = spec
        self.requests = requests
        self._buffers()

    def _buffers(self) -> None:
        """Each request's input, mask and confidence buffers, made once."""
        spec, requests = self.spec, self.requests
        self.inputs = [self._buffer(spec.input_shape, np.uint8) for _ in range(requests)]
        self.masks = [self._buffer(spec.output_shape, np.uint8) for _ in range(requests)]
        self.confidences: list[np.ndarray | None] = [
            self._buffer(spec.output_shape, np.float32) if spec.confidence_name else None for _ in range(requests)]

    def _buffer(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        """One IO buffer; backends that need special memory (pinned host memory) override this."""
        return np.zeros(shape, dtype)

    # Request 0's buffers, for the one-request latency path.
    @property
    def input(self) -> np.ndarray:
        return self.inputs[0]

    @property
    def mask(self) -> np.ndarray:
        return self.masks[0]

    @property
    def confidence(self) -> np.ndarray | None:
        return self.confidences[0]

    @abstractmethod
    def infer(self, request: int = 0) -> None:
        """Run one request synchronously on its buffers."""

    @abstractmethod
    def acquire(self) -> int:
        """An idle request slot (blocks until one is free)."""

    @abstractmethod
    def submit(self, request: int, on_done: Done) -> None:
        """Start a request; ``on_done(request)`` runs when its outputs are filled."""

    @abstractmethod
    def drain(self) -> None:
        """Wait until every submitted request is done."""

    def close(self) -> None:  # noqa: B027 - an optional hook, a no-op by default
        """Release backend resources (buffers stay readable)."""

    def __enter__(self: EngineT) -> EngineT:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def require_module(name: str, what: str, fix: str):
    """A backend library, imported when first needed; missing, it is one clear error."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        raise EngineError(f"{what} is not installed", fix=fix) from None


def merge_options(backend: str, defaults: dict, built: dict, overrides: dict) -> dict:
    """A backend's settings: its defaults, then what the bundle was built with, then the caller's
    overrides (None means "keep"); an option the backend does not know is refused."""
    unknown = set(overrides) - set(defaults)
    if unknown:
        raise ConfigError(f"{backend} has no option {', '.join(sorted(unknown))}",
                          fix=f"options: {', '.join(defaults)}")
    return {**defaults, **built, **{k: v for k, v in overrides.items() if v is not None}}


class InOrderRequests(Engine):
    """Throughput mode for backends that start a request and wait for it: completion is
    collected in the caller's thread, oldest request first, when ``acquire`` needs a slot and in
    ``drain``. The backend's own threads never call back into Python, so they never wait for the
    GIL while the caller pre- and post-processes frames (docs/decisions/0011-in-order-requests.md)."""

    def __init__(self, spec: IOSpec, requests: int = 1):
        super().__init__(spec, requests)
        self._free = deque(range(requests))
        self._in_flight: deque[tuple[int, Done]] = deque()

    @abstractmethod
    def _start(self, request: int) -> None:
        """Start the request on its buffers and return at once."""

    @abstractmethod
    def _wait(self, request: int) -> None:
        """Block until the request's outputs are filled (raising if it failed)."""

    def acquire(self) -> int:
        if self._free:
            return self._free.popleft()
        request, on_done = self._in_flight.popleft()
        self._collect(request, on_done)
        return request

    def submit(self, request: int, on_done: Done) -> None:
        self._start(request)
        self._in_flight.append((request, on_done))

    def drain(self) -> None:
        while self._in_flight:
            request, on_done = self._in_flight.popleft()
            self._collect(request, on_done)
            self._free.append(request)

    def _collect(self, request: int, on_done: Done) -> None:
        try:
            self._wait(request)
            on_done(request)
        except BaseException:
            self._free.append(request)  # the slot stays usable after a failed request
            raise
