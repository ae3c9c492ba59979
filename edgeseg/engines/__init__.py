"""Engines: one module per backend, all behind the Engine contract (``base.py``), loaded from a
checked bundle (``bundle.py``). Backend libraries are imported only when a backend is used, so
importing this package pulls in neither OpenVINO, ONNX Runtime nor TensorRT."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, cast

from edgeseg.engines.backend import Backend
from edgeseg.engines.base import Engine, IOSpec
from edgeseg.engines.bundle import Bundle
from edgeseg.engines.trust import load_policy
from edgeseg.errors import ConfigError

log = logging.getLogger(__name__)

# A new backend is one module and one line here.
BACKENDS = {
    "openvino": "edgeseg.engines.openvino_engine",
    "onnxruntime": "edgeseg.engines.onnxruntime_engine",
    "tensorrt": "edgeseg.engines.tensorrt_engine",
}
PRECISIONS = ("fp32", "fp16", "bf16", "int8")

if TYPE_CHECKING:  # mypy holds every backend module to the Backend protocol
    from edgeseg.engines import onnxruntime_engine, openvino_engine, tensorrt_engine

    _OPENVINO: Backend = openvino_engine
    _ONNXRUNTIME: Backend = onnxruntime_engine
    _TENSORRT: Backend = tensorrt_engine


def backend_module(name: str) -> Backend:
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend '{name}'", fix=f"choose one of {', '.join(BACKENDS)}")
    return cast(Backend, importlib.import_module(BACKENDS[name]))


def open_engine(path: str | Path | Bundle, requests: int = 1, batch: int | None = None, height: int | None = None,
                width: int | None = None, remote: str | None = None, **options) -> Engine:
    """Load a bundle: verify its checksums (and signature, where the process trusts keys) and its
    fingerprint, then bind preallocated buffers.

    ``options`` override the backend's runtime settings recorded at build time (for OpenVINO:
    hint, threads, streams; for ONNX Runtime: threads; for TensorRT: cuda_graph). ``remote``, a
    ``kserve://HOST:PORT/MODEL`` address, sends the frames to a serving engine instead
    (``kserve_engine.py``); the bundle then only says what the model takes and gives."""
    bundle = path if isinstance(path, Bundle) else Bundle.read(path)
    if remote:
        from edgeseg.engines.kserve_engine import open_remote

        return open_remote(bundle, remote, IOSpec.from_manifest(bundle.manifest, batch, height, width), requests)
    module = backend_module(bundle.backend)
    here = module.fingerprint(bundle.manifest["engine"])
    for warning in bundle.check_fingerprint(here, load_policy().allow_version_mismatch):
        log.warning("%s", warning)
    spec = IOSpec.from_manifest(bundle.manifest, batch, height, width)
    return module.load(bundle, spec, requests, **options)


__all__ = ["BACKENDS", "PRECISIONS", "Backend", "Bundle", "Engine", "IOSpec", "backend_module", "open_engine"]
