"""Benchmark: the remote engine's overhead against local inference, side by side in one run, with
the server on the same machine.

- local: the bundle's OpenVINO engine in this process, ``infer()`` on a frame at model size.
- remote, HTTP and gRPC: the same frames through ``KServeEngine`` to a real Triton Inference Server
  (PyTriton's server binary, from the peers' venv that .ci/run makes), which runs the same bundle's
  OpenVINO engine in its Python backend (tests/engines/triton_host.py).

Per-frame latency, p50 and p99, over interleaved rounds (local, HTTP, gRPC, then again), so that
the machine's drift falls on all three alike. Client and server share the machine's cores.

    .venv/bin/python benchmarks/remote_engine.py                # the bundle from the docs' checkpoint
    .venv/bin/python benchmarks/remote_engine.py --bundle BUNDLE --rounds 5 --frames 60
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from common import (
    DEFAULT_CHECKPOINT,
    DEFAULT_DATA,
    checkpoint_at,
    cpu_name,
    model_of,
    result_folder,
    run_main,
    write_run_json,
)
from edgeseg.data.frames import load_frames
from edgeseg.engines import open_engine

ROOT = Path(__file__).resolve().parents[1]
HOST = ROOT / "tests" / "engines" / "triton_host.py"
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
sys.path.insert(0, str(ROOT / "tests"))
from media import free_port, wait_for  # noqa: E402  (the tests' helpers, not a package)


def build_bundle(out: Path) -> Path:
    """The docs' checkpoint exported and compiled for OpenVINO fp32 (gate on magnetic-tile val)."""
    onnx, bundle = out / "model.onnx", out / "openvino-fp32"
    if not bundle.is_dir():
        cli = [sys.executable, "-m", "edgeseg"]
        checkpoint = checkpoint_at(DEFAULT_CHECKPOINT)
        subprocess.run([*cli, "export", str(checkpoint), "-o", str(onnx), "--data", str(DEFAULT_DATA)], check=True)
        subprocess.run([*cli, "compile", str(onnx), "--backend", "openvino", "--precision", "fp32",
                        "--data", str(DEFAULT_DATA), "-o", str(bundle)], check=True)
    return bundle


def start_server(bundle: Path, log: Path) -> tuple[subprocess.Popen, int, int]:
    import tritonclient.http as client

    http, grpc = free_port(), free_port()
    with open(log, "wb") as out:
        server = subprocess.Popen([str(PEERS_PYTHON), str(HOST), str(bundle), "parts", str(http), str(grpc),
                                   str(free_port())], stdout=out, stderr=out, start_new_session=True)

    def ready() -> bool:
        try:
            return client.InferenceServerClient(f"127.0.0.1:{http}").is_model_ready("parts")
        except Exception:
            return False

    if not wait_for(ready, timeout=180, every=0.5):
        os.killpg(server.pid, signal.SIGKILL)
        raise RuntimeError(f"Triton did not start: {log.read_text()[-2000:]}")
    return server, http, grpc


def time_frames(engine, frames: np.ndarray) -> list[float]:
    """Milliseconds per frame, from the frame put into the engine's input to its mask filled."""
    times = []
    for frame in frames:
        start = time.perf_counter()
        engine.input[0] = frame
        engine.infer()
        times.append((time.perf_counter() - start) * 1000)
    return times


def percentiles(times: list[float]) -> dict:
    return {"p50_ms": round(float(np.percentile(times, 50)), 3), "p99_ms": round(float(np.percentile(times, 99)), 3),
            "frames": len(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, help="an OpenVINO bundle (default: built from the docs' checkpoint)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=60, help="frames per round and engine")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = args.out or result_folder("remote-engine", model_of(DEFAULT_CHECKPOINT))
    write_run_json(out)
    bundle = args.bundle or build_bundle(out / "run")
    engines = {"local": open_engine(bundle)}
    spec = engines["local"].spec
    frames = load_frames(DEFAULT_DATA, spec.channels, spec.height, spec.width, args.frames, split="val").frames
    server, http, grpc = start_server(bundle, out / "run" / "triton.log" if not args.bundle else out / "triton.log")
    try:
        engines["http"] = open_engine(bundle, remote=f"kserve://127.0.0.1:{http}/parts")
        engines["grpc"] = open_engine(bundle, remote=f"kserve+grpc://127.0.0.1:{grpc}/parts")
        for engine in engines.values():
            time_frames(engine, frames[:10])  # warm up
        times: dict[str, list[float]] = {name: [] for name in engines}
        for _ in range(args.rounds):
            for name, engine in engines.items():
                times[name] += time_frames(engine, frames)
    finally:
        for engine in engines.values():
            engine.close()
        os.killpg(server.pid, signal.SIGKILL)
    report(out, bundle, {name: percentiles(t) for name, t in times.items()})


def report(out: Path, bundle: Path, figures: dict) -> None:
    local = figures["local"]
    for name in ("http", "grpc"):
        figures[name]["p50_over_local"] = round(figures[name]["p50_ms"] / local["p50_ms"], 2)
        figures[name]["p50_added_ms"] = round(figures[name]["p50_ms"] - local["p50_ms"], 3)
    shown = bundle.resolve().relative_to(ROOT) if bundle.resolve().is_relative_to(ROOT) else bundle
    summary = {"cpu": cpu_name(), "bundle": str(shown), "server": "Triton (PyTriton 0.7.0), same machine",
               "engines": figures}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    lines = ["| engine | p50 ms | p99 ms | p50 against local |", "|---|---|---|---|"]
    for name, f in figures.items():
        ratio = "1.00x" if name == "local" else f"{f['p50_over_local']:.2f}x (+{f['p50_added_ms']:.2f} ms)"
        lines.append(f"| {name} | {f['p50_ms']:.2f} | {f['p99_ms']:.2f} | {ratio} |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    run_main(main)
