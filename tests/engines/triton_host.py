"""A real Triton Inference Server for the remote engine's tests: PyTriton starts Triton's own
server binary (from the nvidia-pytriton wheel) and binds a model whose inference is edgeseg's
local engine on the bundle given. Run by tests/engines/test_kserve_engine.py in the venv that
.ci/run makes for it (PyTriton needs NumPy 1.x):

    python triton_host.py BUNDLE MODEL HTTP_PORT GRPC_PORT METRICS_PORT
"""

from __future__ import annotations

import sys

import numpy as np
from pytriton.decorators import batch
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

from edgeseg.engines import open_engine


def main(bundle: str, model: str, http_port: int, grpc_port: int, metrics_port: int) -> None:
    engine = open_engine(bundle)
    spec = engine.spec

    @batch
    def infer(frames: np.ndarray) -> dict[str, np.ndarray]:
        masks, confidences = [], []
        for frame in frames:
            engine.input[0] = frame
            engine.infer()
            masks.append(engine.mask[0].copy())
            confidences.append(engine.confidence[0].copy())
        return {"mask": np.stack(masks), "confidence": np.stack(confidences)}

    config = TritonConfig(http_address="127.0.0.1", http_port=http_port, grpc_address="127.0.0.1",
                          grpc_port=grpc_port, metrics_port=metrics_port)
    with Triton(config=config) as triton:
        triton.bind(model_name=model, infer_func=infer,
                    inputs=[Tensor(name=spec.input_name, dtype=np.uint8, shape=(spec.height, spec.width,
                                                                                spec.channels))],
                    outputs=[Tensor(name="mask", dtype=np.uint8, shape=(spec.height, spec.width)),
                             Tensor(name="confidence", dtype=np.float32, shape=(spec.height, spec.width))],
                    config=ModelConfig(max_batch_size=4))
        print("serving", flush=True)
        triton.serve()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
