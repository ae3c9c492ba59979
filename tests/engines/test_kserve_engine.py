"""The remote engine against a real Triton Inference Server on loopback: Triton's own server
binary, started by PyTriton (tests/engines/triton_host.py) in the venv .ci/run makes for the peers,
hosting edgeseg's local OpenVINO engine; frames sent over HTTP and gRPC come back as the same
masks as local inference, in throughput mode too; a model that does not fit the bundle is
refused; a server that goes away is retried and picked up again when it returns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from media import free_port, wait_for

from edgeseg.data.frames import load_frames
from edgeseg.engines import open_engine
from edgeseg.engines.kserve_engine import KServeEngine, RemoteTarget
from edgeseg.errors import ConfigError, EngineError

HOST = Path(__file__).with_name("triton_host.py")
MODEL = "parts"


class Server:
    def __init__(self, python: Path, bundle: Path, log: Path):
        self.python, self.bundle, self.log = python, bundle, log
        self.http, self.grpc, self.metrics = free_port(), free_port(), free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        import tritonclient.http as client

        env = {**os.environ, "EDGESEG_CACHE_DIR": str(self.log.parent / "cache")}
        with open(self.log, "ab") as log:
            # a session of its own: stopping it stops Triton's server process, PyTriton's child, too
            self.process = subprocess.Popen([str(self.python), str(HOST), str(self.bundle), MODEL, str(self.http),
                                             str(self.grpc), str(self.metrics)], stdout=log, stderr=log, env=env,
                                            start_new_session=True)

        def ready() -> bool:
            try:
                return client.InferenceServerClient(f"127.0.0.1:{self.http}").is_model_ready(MODEL)
            except Exception:
                return False

        assert wait_for(ready, timeout=120, every=0.5), self.log.read_text()[-3000:]

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            self.process = None

    def url(self, protocol: str = "http") -> str:
        scheme = "kserve" if protocol == "http" else "kserve+grpc"
        return f"{scheme}://127.0.0.1:{self.http if protocol == 'http' else self.grpc}/{MODEL}"


@pytest.fixture(scope="module")
def server(peers_python, bundle_factory, tmp_path_factory):
    server = Server(peers_python, bundle_factory("openvino", "fp32").path,
                    tmp_path_factory.mktemp("triton") / "triton.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def frames(synth_data):
    return load_frames(synth_data, 1, 64, 64, 8, split="val").frames


def _masks(engine, frames) -> tuple[np.ndarray, np.ndarray]:
    masks, confidences = [], []
    for frame in frames:
        engine.input[0] = frame
        engine.infer()
        masks.append(engine.mask.copy())
        confidences.append(engine.confidence.copy())
    return np.concatenate(masks), np.concatenate(confidences)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_remote_inference_gives_the_masks_of_local_inference(server, frames, protocol):
    with open_engine(server.bundle) as local:
        expected, expected_confidence = _masks(local, frames)
    with open_engine(server.bundle, remote=server.url(protocol)) as remote:
        assert isinstance(remote, KServeEngine) and remote.mask.shape == (1, 64, 64)
        masks, confidences = _masks(remote, frames)
    assert np.array_equal(masks, expected)
    assert np.allclose(confidences, expected_confidence, atol=1e-6)


def test_throughput_mode_keeps_several_requests_in_flight_in_order(server, frames):
    with open_engine(server.bundle) as local:
        expected, _ = _masks(local, frames)
    done: dict[int, np.ndarray] = {}
    with open_engine(server.bundle, requests=4, remote=server.url()) as remote:
        for index, frame in enumerate(frames):
            slot = remote.acquire()
            remote.inputs[slot][0] = frame
            remote.submit(slot, lambda s, i=index: done.__setitem__(i, remote.masks[s].copy()))
        remote.drain()
    assert np.array_equal(np.concatenate([done[i] for i in range(len(frames))]), expected)


def test_a_served_model_that_does_not_fit_the_bundle_is_refused(server, bundle_factory):
    with pytest.raises(EngineError, match="does not serve this bundle's model: input shape"):
        open_engine(bundle_factory("openvino", "fp32", size=128).path, remote=server.url())
    with pytest.raises(ConfigError, match="not a remote engine address"):
        RemoteTarget.parse("kserve://127.0.0.1/parts")


def test_a_server_that_goes_away_is_retried_and_picked_up_again(server, frames):
    engine = KServeEngine(_bundle(server), _spec(server), server.url(), retry_seconds=120)
    with engine:
        engine.input[0] = frames[0]
        engine.infer()
        first = engine.mask.copy()
        server.stop()
        finished = threading.Event()
        worker = threading.Thread(target=lambda: (engine.infer(), finished.set()))
        worker.start()
        assert not finished.wait(2.0)  # waiting for the server, not failing
        server.start()
        worker.join(120)
        assert finished.is_set() and engine.reconnects == 1
        assert np.array_equal(engine.mask, first)


def test_a_server_that_does_not_answer_ends_in_one_clear_error(server):
    url = f"kserve://127.0.0.1:{free_port()}/{MODEL}"
    with pytest.raises(EngineError, match="does not answer.*tried for 1 s"):
        KServeEngine(_bundle(server), _spec(server), url, retry_seconds=1)


def test_edgeseg_run_with_a_remote_engine_writes_the_results_of_a_local_run(server, synth_data, tmp_path):
    results = {}
    for name, extra in (("local", []), ("remote", ["--engine", server.url("grpc")])):
        done = subprocess.run([sys.executable, "-m", "edgeseg", "run", str(server.bundle), str(synth_data / "images"),
                               "--max-frames", "6", "--quiet", "--out", str(tmp_path / name), *extra],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        lines = [json.loads(line) for line in (tmp_path / name / "results.jsonl").read_text().splitlines()]
        results[name] = [(line["verdict"], line["regions"]) for line in lines]
    assert len(results["remote"]) == 6 and results["remote"] == results["local"]


def _bundle(server):
    from edgeseg.engines import Bundle

    return Bundle.read(server.bundle)


def _spec(server):
    from edgeseg.engines import IOSpec

    return IOSpec.from_manifest(_bundle(server).manifest)
