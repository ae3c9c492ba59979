"""Benchmark: the streaming runtime on a 1280x1024 Mono8 frame stream with the magnetic-tile model
on OpenVINO, against the same compiled model's inference alone, a typical hand-written loop, and
OpenVINO's own benchmark_app, in one run.

Frames: 64 val photos of the magnetic-tile set, scaled to 1280x1024 Mono8 and handed over from
memory at full speed, as a camera driver hands over its buffers (no decoding in the way).

- inference alone: the bundle engine's ``infer()`` on a frame already at model size.
- edgeseg end to end: ``edgeseg run``'s loop (latency mode) from a frame leaving the capture ring
  to its regions and verdict: resize into the engine, infer, threshold, regions, verdict. No
  sinks (their cost depends on what is written; see the stage table of ``edgeseg run``). The
  frames are lent to the ring, as a zero-copy driver hands over its buffers; the same loop with
  each frame copied into the ring by the capture thread (as sources that decode or convert do)
  is timed beside it.
- hand-written loop: what one would write without edgeseg on the same backend: cv2.resize,
  numpy float normalisation, the float32 model (raw logits, NCHW) run at float32, numpy argmax,
  the mask resized to the frame. Also timed with OpenVINO's defaults, which on a CPU with AMX
  quietly run that model in bf16.
- throughput: the loop in throughput mode (requests in flight, throughput hint) in frames per
  second over ``--throughput-seconds`` (15, as long as benchmark_app runs), against
  ``benchmark_app -hint throughput`` on the same IR at the same inference precision (which only
  runs inference, on random data), the better of its own number of requests and edgeseg's.

Latency figures are medians over interleaved rounds. ``--loop-only`` times only inference alone
against end to end, for a closer look at the loop's own cost on one bundle. Targets: end to end
<= 1.10x inference alone; throughput >= 0.9x benchmark_app; end to end >= 2x faster than the
hand-written loop.

    .venv/bin/python benchmarks/runtime_magnetic_tile.py --checkpoint best.pt
    .venv/bin/python benchmarks/runtime_magnetic_tile.py --loop-only --bundles BUNDLE --rounds 6 --iterations 480
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from datetime import date
from pathlib import Path

import cv2
import numpy as np

from common import (
    DEFAULT_DATA,
    RESULTS,
    benchmark_app,
    checkpoint_at,
    cpu_name,
    machine_tag,
    result_folder,
    run_main,
    throughput_fps,
    write_run_json,
)
from edgeseg.engines.bundle import Bundle
from edgeseg.runtime.session import InspectionSession, RunOptions
from edgeseg.runtime.sources.memory import MemorySource

BUILD_DEFAULTS = "benchmarks/engines_magnetic_tile.py"  # its default checkpoint is the kept unet-lite one


def default_bundles() -> list[Path]:
    """The engine benchmark's newest bundles of the default model on this kind of CPU (its run/
    folder is not kept in git); fp32 beside int8, as every CPU runs both."""
    runs = sorted((RESULTS / "engines" / "unet-lite").glob(f"{machine_tag()}-*/run"))
    root = runs[-1] if runs else result_folder("engines", "unet-lite") / "run"
    return [root / f"{size}px" / f"openvino-{precision}" for size in (256, 512) for precision in ("int8", "fp32")]


FRAME_W, FRAME_H = 1280, 1024
LOOPS = ("session", "session_copy")  # frames lent to the capture ring; the same frames copied into it


def stream_frames(data: Path, count: int) -> list[np.ndarray]:
    names = (data / "val.txt").read_text().split()
    picked = [names[i] for i in np.linspace(0, len(names) - 1, count).round().astype(int)]
    frames = []
    for name in picked:
        path = next((data / "images").glob(f"{name}.*"))
        frames.append(cv2.resize(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), (FRAME_W, FRAME_H),
                                 interpolation=cv2.INTER_LINEAR))
    return frames


def raw_float_model(checkpoint: Path, size: int, out: Path) -> tuple[Path, list, list]:
    """The trained network as a typical export: float32 NCHW normalised input, logits out."""
    import torch

    from edgeseg.training.checkpoint import load_checkpoint, model_from_checkpoint

    state = load_checkpoint(checkpoint)
    norm = state["meta"]["normalization"]
    if not out.is_file():
        model = model_from_checkpoint(state).eval()
        torch.onnx.export(model, torch.zeros(1, 1, size, size), str(out), input_names=["x"], output_names=["logits"],
                          dynamo=False)
    return out, norm["mean"], norm["std"]


def handwritten_loop(model: Path, size: int, mean: list, std: list, f32: bool):
    """One frame as a typical script does it; returns the frame-size mask. ``f32``: the float32
    model run at float32; otherwise OpenVINO's defaults (which run it in bf16 on CPUs with AMX)."""
    import openvino as ov

    config = {"INFERENCE_PRECISION_HINT": "f32"} if f32 else {}
    compiled = ov.Core().compile_model(str(model), "CPU", config)
    mean, std = np.float32(mean[0]), np.float32(std[0])

    def run(frame: np.ndarray) -> np.ndarray:
        x = cv2.resize(frame, (size, size)).astype(np.float32) / 255.0
        x = (x - mean) / std
        logits = compiled(x[None, None])[0]
        mask = np.argmax(logits, axis=1)[0].astype(np.uint8)
        return cv2.resize(mask, (FRAME_W, FRAME_H), interpolation=cv2.INTER_NEAREST_EXACT)

    return run, {"hint": str(compiled.get_property("PERFORMANCE_HINT")),
                 "inference_precision": str(compiled.get_property("INFERENCE_PRECISION_HINT"))}


def best_benchmark_app_fps(bundle: Path, precision: str, seconds: int, requests: int) -> tuple[float, int | None]:
    """benchmark_app's best throughput: with the requests it picks itself (one per stream), and with as
    many as edgeseg keeps in flight (2 cores: 2 streams, and 4 requests ran faster on a Xeon).
    Returns (fps, -nireq of the best; None for its own choice)."""
    runs = [(throughput_fps(benchmark_app(bundle / "model.xml", precision, "throughput", seconds, nireq)), nireq)
            for nireq in (None, requests)]
    return max(runs, key=lambda run: run[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=Path, nargs="+",
                        help="OpenVINO bundles of the magnetic-tile model (default: the engine benchmark's "
                        "of unet-lite, int8 and fp32 at 256 and 512 px)")
    parser.add_argument("--checkpoint", type=Path,
                        help="the checkpoint they were built from (for the hand-written loops)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=300, help="frames per configuration, over all rounds")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--throughput-seconds", type=float, default=15.0,
                        help="how long throughput mode runs (as long as benchmark_app by default: a light "
                        "model streams 600 frames in under 2 s, too short a sample)")
    parser.add_argument("--benchmark-app-seconds", type=int, default=15)
    parser.add_argument("--loop-only", action="store_true",
                        help="only inference alone against end to end (no hand-written loops, no throughput)")
    parser.add_argument("--out", type=Path, help="default: results/runtime/MODEL/MACHINE-DATE (with --loop-only: "
                        "...-loop-only)")
    args = parser.parse_args()
    default = args.bundles is None
    args.bundles = args.bundles or default_bundles()
    if args.checkpoint is None and not args.loop_only:
        parser.error("--checkpoint is needed for the hand-written loops (or measure with --loop-only)")
    if args.checkpoint is not None:
        args.checkpoint = checkpoint_at(args.checkpoint)
    missing = [str(path) for path in args.bundles if not (path / "manifest.json").is_file()]
    if missing:
        fix = f"; build the default ones with .venv/bin/python {BUILD_DEFAULTS}" if default else ""
        parser.error(f"no bundle at {', '.join(missing)}{fix}")
    model = Bundle.read(args.bundles[0]).manifest["model"]["arch"]
    args.out = args.out or result_folder("runtime", model, "loop-only" if args.loop_only else "")
    write_run_json(args.out)
    (args.out / "run").mkdir(parents=True, exist_ok=True)
    frames = stream_frames(args.data, args.frames)
    per_round = args.iterations // args.rounds

    configs = []
    for path in args.bundles:
        manifest = Bundle.read(path).manifest
        size, precision = manifest["input"]["height"], manifest["precision"]
        session = InspectionSession(RunOptions(path, MemorySource(frames), status=False))
        copying = MemorySource(frames)
        copying.lends = False  # the capture thread copies each frame into the ring's own buffers
        session_copy = InspectionSession(RunOptions(path, copying, status=False))
        handwritten = handwritten_default = defaults = None
        if not args.loop_only:
            model, mean, std = raw_float_model(args.checkpoint, size, args.out / "run" / f"raw_fp32_{size}.onnx")
            handwritten, _ = handwritten_loop(model, size, mean, std, f32=True)
            handwritten_default, defaults = handwritten_loop(model, size, mean, std, f32=False)
        configs.append({"bundle": path, "size": size, "precision": precision, "session": session,
                        "session_copy": session_copy, "inference_precision": manifest["engine"]["inference_precision"],
                        "handwritten": handwritten, "handwritten_default": handwritten_default,
                        "handwritten_defaults": defaults, "infer_ms": [], "handwritten_ms": [],
                        "handwritten_default_ms": []})
        print(f"{path}: {size} px {precision}", flush=True)

    def time_inference(config):
        engine = config["session"].engine
        pre = config["session"].loop.pre
        for i in range(per_round):
            pre(frames[i % len(frames)])
            start = time.perf_counter()
            engine.infer()
            config["infer_ms"].append((time.perf_counter() - start) * 1e3)

    def time_handwritten(config, which):
        if args.loop_only:
            return
        for i in range(per_round):
            start = time.perf_counter()
            config[which](frames[i % len(frames)])
            config[f"{which}_ms"].append((time.perf_counter() - start) * 1e3)

    for config in configs:  # warm-up
        for key in LOOPS:
            config[key].loop.run(max_frames=20)
        if not args.loop_only:
            config["handwritten"](frames[0])
            config["handwritten_default"](frames[0])
    for config in configs:
        for key in LOOPS:
            config[key].loop.times.count = 0  # forget the warm-up
            config[key].loop.frames = 0
    for round_number in range(args.rounds):
        for config in configs:
            time_inference(config)
            for key in LOOPS:
                loop = config[key].loop
                loop.run(max_frames=loop.frames + per_round)
            time_handwritten(config, "handwritten")
            time_handwritten(config, "handwritten_default")
        print(f"round {round_number + 1}/{args.rounds} done", flush=True)

    rows = []
    for config in configs:
        loop = config["session"].loop
        stages = loop.times.summary()
        config["session"].close()
        copied = config["session_copy"].loop.times.summary()["end_to_end"]["p50_ms"]
        config["session_copy"].close()
        infer = statistics.median(config["infer_ms"])
        e2e = stages["end_to_end"]["p50_ms"]
        row = {"size": config["size"], "precision": config["precision"],
               "inference_precision": config["inference_precision"], "infer_p50_ms": infer,
               "e2e_p50_ms": e2e, "e2e_p99_ms": stages["end_to_end"]["p99_ms"],
               "stages_p50_ms": {k: v["p50_ms"] for k, v in stages.items()}, "e2e_over_infer": e2e / infer,
               "e2e_copied_p50_ms": copied, "e2e_copied_over_infer": copied / infer}
        if not args.loop_only:
            row.update(baselines(config, frames, e2e, args))
        rows.append(row)
        print(json.dumps(row), flush=True)

    result = {"date": date.today().isoformat(), "cpu": cpu_name(), "frame": [FRAME_H, FRAME_W], "frames": args.frames,
              "iterations": args.iterations, "rounds": args.rounds, "checkpoint": str(args.checkpoint),
              "loop_only": args.loop_only, "rows": rows}
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "table.md").write_text(table(rows) + "\n")
    plot(rows, args.out / "stages.png")
    print(table(rows))


def baselines(config: dict, frames: list[np.ndarray], e2e: float, args) -> dict:
    """The hand-written loops' medians, then throughput mode against benchmark_app on the same IR."""
    handwritten = statistics.median(config["handwritten_ms"])
    handwritten_default = statistics.median(config["handwritten_default_ms"])
    session = InspectionSession(RunOptions(config["bundle"], MemorySource(frames), throughput=True,
                                           status=False))
    session.loop.run(max_frames=40)
    started, done = time.perf_counter(), session.loop.frames
    timer = threading.Timer(args.throughput_seconds, session.loop.stop)  # stops after the frame at hand
    timer.start()
    summary = session.loop.run()
    timer.cancel()  # the loop may have ended first (an error): no stop left pending
    fps = (summary.frames - done) / (time.perf_counter() - started)
    requests = session.engine.requests
    session.close()
    limit, limit_requests = best_benchmark_app_fps(config["bundle"], config["inference_precision"],
                                          args.benchmark_app_seconds, requests)
    return {"handwritten_p50_ms": handwritten, "speedup_vs_handwritten": handwritten / e2e,
            "handwritten_default_p50_ms": handwritten_default, "handwritten_defaults": config["handwritten_defaults"],
            "speedup_vs_handwritten_default": handwritten_default / e2e,
            "throughput_fps": fps, "throughput_requests": requests, "benchmark_app_fps": limit,
            "benchmark_app_nireq": limit_requests,
            "throughput_vs_benchmark_app": fps / limit}


def table(rows: list[dict]) -> str:
    lines = ["| model | inference alone p50 | edgeseg end to end p50 (pre / infer / post) | e2e ÷ inference | "
             "frames copied into the ring: e2e p50 (÷ inference) | "
             "hand-written loop p50, f32 (× edgeseg) | same, OpenVINO defaults (×) | throughput fps (requests) | "
             "benchmark_app fps (requests) | ÷ benchmark_app |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r["stages_p50_ms"]
        cells = [f"{r['size']} px {r['precision']} ({r['inference_precision']})", f"{r['infer_p50_ms']:.2f} ms",
                 f"{r['e2e_p50_ms']:.2f} ms ({s['preprocess']:.2f} / {s['infer']:.2f} / {s['postprocess']:.2f})",
                 f"{r['e2e_over_infer']:.3f}", f"{r['e2e_copied_p50_ms']:.2f} ms ({r['e2e_copied_over_infer']:.3f})"]
        if "handwritten_p50_ms" in r:
            cells += [f"{r['handwritten_p50_ms']:.2f} ms ({r['speedup_vs_handwritten']:.1f})",
                      f"{r['handwritten_default_p50_ms']:.2f} ms ({r['speedup_vs_handwritten_default']:.1f})",
                      f"{r['throughput_fps']:.1f} ({r['throughput_requests']})",
                      f"{r['benchmark_app_fps']:.1f} ({r.get('benchmark_app_nireq') or 'own'})",
                      f"{r['throughput_vs_benchmark_app']:.2f}"]
        else:  # --loop-only
            cells += ["", "", "", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    labels = [f"{r['size']} px {r['precision']}" for r in rows]
    x = np.arange(len(rows))
    bottom = np.zeros(len(rows))
    for stage, color in (("preprocess", "tab:green"), ("infer", "tab:blue"), ("postprocess", "tab:orange")):
        values = np.array([r["stages_p50_ms"][stage] for r in rows])
        ax.bar(x - 0.2, values, 0.4, bottom=bottom, color=color, label=f"edgeseg: {stage}")
        bottom += values
    if all("handwritten_p50_ms" in r for r in rows):
        ax.bar(x + 0.2, [r["handwritten_p50_ms"] for r in rows], 0.4, color="tab:gray", label="hand-written loop, f32")
        ax.scatter(x + 0.2, [r["handwritten_default_p50_ms"] for r in rows], marker="_", s=600, color="tab:red",
                   zorder=3, label="hand-written, OpenVINO defaults")
    ax.scatter(x - 0.2, [r["infer_p50_ms"] for r in rows], marker="_", s=600, color="black", zorder=3,
               label="inference alone")
    ax.set_xticks(x, labels)
    ax.set(ylabel="p50 ms per 1280x1024 frame", title="Streaming runtime on OpenVINO, 2 CPU cores")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    from edgeseg.training.plots import save_small_png

    save_small_png(fig, path)
    plt.close(fig)


if __name__ == "__main__":
    run_main(main)
