"""The TensorRT engine's own CUDA work on a real GPU, where TensorRT itself is not installed:
pinned host buffers, device buffers, one non-blocking stream per request, copies in and out,
CUDA graph capture and replay, several requests in flight, and buffers that outlive close().

TensorRT is replaced by a stand-in plan whose execution is real CUDA work on the engine's stream:
it copies the input to the mask (device to device; a 1-channel uint8 frame has the mask's size)
and fills the confidence with one byte pattern. What is checked is edgeseg's handling of memory,
streams and graphs, not a network: no model result is claimed."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgeseg.engines.base import IOSpec

FILL = 0x3F  # the confidence's every byte: float32 0x3F3F3F3F


def _cudart():
    from edgeseg.engines.tensorrt_engine import _cudart

    return _cudart()


class _Context:
    """An execution context whose 'network' is a device-to-device copy and a memset."""

    def __init__(self, nbytes: int):
        self.nbytes = nbytes  # the input's, which is the mask's
        self.addresses: dict[str, int] = {}

    def set_input_shape(self, name, shape) -> bool:
        return True

    def set_tensor_address(self, name: str, address: int) -> bool:
        self.addresses[name] = address
        return True

    def execute_async_v3(self, stream: int) -> bool:
        cudart, a = _cudart(), self.addresses
        kind = cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice
        ok = cudart.cudaMemcpyAsync(a["mask"], a["input"], self.nbytes, kind, stream)[0] == 0
        return ok and cudart.cudaMemsetAsync(a["confidence"], FILL, self.nbytes * 4, stream)[0] == 0


def _stand_in_tensorrt(nbytes: int) -> types.ModuleType:
    module = types.ModuleType("tensorrt")
    module.__version__ = "stand-in"

    class Logger:
        WARNING = 2

        def __init__(self, level):
            self.level = level

    plan = SimpleNamespace(create_execution_context=lambda: _Context(nbytes))
    module.Logger = Logger
    module.Runtime = lambda logger: SimpleNamespace(deserialize_cuda_engine=lambda data: plan)
    return module


def _engine(tmp_path: Path, monkeypatch, requests: int, cuda_graph: bool):
    from edgeseg.engines.tensorrt_engine import PLAN_FILE, TensorRtEngine

    spec = IOSpec("input", 1, 48, 64, 1, "gray", "mask", "confidence", False)
    monkeypatch.setitem(sys.modules, "tensorrt", _stand_in_tensorrt(48 * 64))
    (tmp_path / PLAN_FILE).write_bytes(b"stand-in plan")
    bundle = SimpleNamespace(manifest={"engine": {"options": {}}}, file=lambda name: tmp_path / name, path=tmp_path)
    return TensorRtEngine(bundle, spec, requests, cuda_graph=cuda_graph)


@pytest.mark.gpu
@pytest.mark.parametrize("cuda_graph", [True, False], ids=["graph", "stream"])
def test_tensorrt_buffers_streams_and_graphs_carry_each_frame_through_the_gpu(tmp_path, monkeypatch, cuda_graph):
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 256, (5, 1, 48, 64, 1), dtype=np.uint8)
    with _engine(tmp_path, monkeypatch, requests=2, cuda_graph=cuda_graph) as engine:
        assert all(slot.graph_exec is not None for slot in engine._slots) == cuda_graph
        for frame in frames[:2]:  # a replayed graph reads the pinned buffer's new contents each time
            engine.input[:] = frame
            engine.infer()
            assert np.array_equal(engine.mask, frame[..., 0])
        expected_confidence = np.frombuffer(bytes([FILL]) * 4, np.float32)[0]
        assert np.all(engine.confidence == expected_confidence)
        done: list[tuple[int, bool]] = []  # (request, whether its mask was its own frame's)
        for frame in frames[2:]:  # two requests in flight, collected oldest first
            request = engine.acquire()
            engine.inputs[request][:] = frame
            engine.submit(request, lambda r, f=frame: done.append((r, np.array_equal(engine.masks[r], f[..., 0]))))
        engine.drain()
        assert [ok for _, ok in done] == [True] * 3 and done[0][0] != done[1][0]
    assert np.array_equal(engine.masks[done[-1][0]], frames[-1][..., 0])  # still readable once the GPU memory is freed
