"""Benchmark: everything side by side, in one run, on the same model and frames: the
magnetic-tile model from 1280x1024 Mono8 frames to a mask (and, for edgeseg, regions and a
verdict), at 256, 512 and 1024 px model input.

Rows per size:
- PyTorch eager: what one would run without exporting (cv2.resize, numpy normalisation, the
  float32 network, argmax, mask resized to the frame);
- hand-written ONNX Runtime and OpenVINO loops on the float32 ONNX model (same steps; OpenVINO
  once at f32 and once with its defaults, which on a CPU with AMX run the model in bf16);
- edgeseg on ONNX Runtime (fp32, fp16, int8) and OpenVINO (fp32, fp16, bf16, int8): ``edgeseg
  run``'s loop on the compiled bundle, latency mode for p50/p99 and throughput mode for FPS;
- the limit: OpenVINO's ``benchmark_app`` on the same IR at the same inference precision
  (throughput FPS; its latency-hint median for the latency ratio). ``trtexec`` would be the
  limit for TensorRT plans; there is no GPU here.

Latencies are medians and 99th percentiles over interleaved rounds (every runner's frames are
spread over the whole run, so the machine's drift hits all alike). FPS for the baselines is
1000 / p50 (one frame at a time, as they are written); for edgeseg it is throughput mode.

    .venv/bin/python benchmarks/compare_magnetic_tile.py --checkpoint best.pt
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path

import cv2
import numpy as np

from common import (
    DEFAULT_DATA,
    benchmark_app,
    checkpoint_at,
    cpu_name,
    median_latency_ms,
    model_of,
    result_folder,
    run_main,
    throughput_fps,
    write_run_json,
)
from edgeseg.engines.bundle import Bundle
from edgeseg.export.compile import CompileOptions, compile_bundle
from edgeseg.export.onnx_export import ExportOptions, export_onnx
from edgeseg.runtime.session import InspectionSession, RunOptions
from edgeseg.runtime.sources.memory import MemorySource
from engines_magnetic_tile import left_out_notes, runnable_cases
from runtime_magnetic_tile import FRAME_H, FRAME_W, handwritten_loop, raw_float_model, stream_frames

CASES = [("onnxruntime", "fp32"), ("onnxruntime", "fp16"), ("onnxruntime", "int8"), ("openvino", "fp32"),
         ("openvino", "fp16"), ("openvino", "bf16"), ("openvino", "int8")]


def bundle_for(size: int, backend: str, precision: str, graph: Path, args) -> Path:
    """A bundle of this case: reused from --reuse-from or this run's folder, else built."""
    roots = (args.out / "run",) if backend in args.rebuild else (args.reuse_from, args.out / "run")
    for root in roots:
        if root is not None and (root / f"{size}px" / f"{backend}-{precision}" / "manifest.json").is_file():
            return root / f"{size}px" / f"{backend}-{precision}"
    path = args.out / "run" / f"{size}px" / f"{backend}-{precision}"
    started = time.perf_counter()
    control = precision == "int8" and size in args.accuracy_control_at
    compile_bundle(CompileOptions(str(graph), str(path), backend=backend, precision=precision, calib=str(args.data),
                                  data=str(args.data), val_frames=args.val_frames, force=True,
                                  accuracy_control=control), show_progress=False)
    print(f"  built {path.name} in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def onnxruntime_loop(model: Path, size: int, mean: list, std: list):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    mean, std = np.float32(mean[0]), np.float32(std[0])

    def run(frame):
        x = cv2.resize(frame, (size, size)).astype(np.float32) / 255.0
        x = (x - mean) / std
        logits = session.run(None, {"x": x[None, None]})[0]
        mask = np.argmax(logits, axis=1)[0].astype(np.uint8)
        return cv2.resize(mask, (FRAME_W, FRAME_H), interpolation=cv2.INTER_NEAREST_EXACT)

    return run


def pytorch_loop(checkpoint: Path, size: int):
    import torch

    from edgeseg.training.checkpoint import load_checkpoint, model_from_checkpoint

    state = load_checkpoint(checkpoint)
    model = model_from_checkpoint(state).eval()
    norm = state["meta"]["normalization"]
    mean, std = np.float32(norm["mean"][0]), np.float32(norm["std"][0])

    def run(frame):
        x = cv2.resize(frame, (size, size)).astype(np.float32) / 255.0
        x = (x - mean) / std
        with torch.no_grad():
            logits = model(torch.from_numpy(x[None, None]))
        mask = logits.argmax(1)[0].numpy().astype(np.uint8)
        return cv2.resize(mask, (FRAME_W, FRAME_H), interpolation=cv2.INTER_NEAREST_EXACT)

    return run


def model_mb(path: Path) -> float:
    if path.is_dir():
        files = Bundle.read(path).manifest["files"]
        return sum(e["bytes"] for n, e in files.items() if n != "reference.onnx") / 1e6
    return path.stat().st_size / 1e6


def bench_size(size: int, frames: list[np.ndarray], args) -> list[dict]:
    work = args.out / "run" / f"{size}px"
    work.mkdir(parents=True, exist_ok=True)
    graph = work / "model.onnx"
    if not graph.is_file():
        export_onnx(ExportOptions(str(args.checkpoint), str(graph), data=str(args.data), height=size, width=size,
                                  parity_images=args.val_frames), show_progress=False)
    raw, mean, std = raw_float_model(args.checkpoint, size, work / "raw_fp32.onnx")
    iterations = max(20, args.iterations * 256 // size)  # fewer frames where each costs more
    per_round = max(1, iterations // args.rounds)

    rows, runners = [], {}
    runners["PyTorch eager"] = {"run": pytorch_loop(args.checkpoint, size), "format": "PyTorch", "precision": "fp32",
                                "mb": args.checkpoint.stat().st_size / 1e6}
    runners["hand-written ONNX Runtime"] = {"run": onnxruntime_loop(raw, size, mean, std), "format": "ONNX",
                                            "precision": "fp32", "mb": model_mb(raw)}
    runners["hand-written OpenVINO (f32)"] = {"run": handwritten_loop(raw, size, mean, std, True)[0],
                                              "format": "ONNX", "precision": "fp32", "mb": model_mb(raw)}
    default_run, defaults = handwritten_loop(raw, size, mean, std, False)
    runners["hand-written OpenVINO (defaults)"] = {
        "run": default_run, "format": "ONNX", "precision": f"fp32 run as {str(defaults['inference_precision'])}",
        "mb": model_mb(raw)}
    sessions = {}
    for backend, precision in args.cases:
        path = bundle_for(size, backend, precision, graph, args)
        manifest = Bundle.read(path).manifest
        session = InspectionSession(RunOptions(path, MemorySource(frames), status=False))
        sessions[(backend, precision)] = (path, manifest, session)
        fmt = "OpenVINO IR" if backend == "openvino" else "ONNX (ORT-optimised)"
        runners[f"edgeseg {backend} {precision}"] = {"session": session, "format": fmt, "precision": precision,
                                                     "mb": model_mb(path), "miou": manifest["parity"]["engine"]["miou"],
                                                     "bundle": path, "manifest": manifest}
    for runner in runners.values():  # warm-up
        if "session" in runner:
            runner["session"].loop.run(max_frames=10)
            runner["session"].loop.times.reset()
            runner["first"] = runner["session"].loop.frames
        else:
            for i in range(5):
                runner["run"](frames[i])
        runner["ms"] = []
    for round_number in range(args.rounds):
        for runner in runners.values():
            if "session" in runner:
                loop = runner["session"].loop
                loop.run(max_frames=loop.frames + per_round)
            else:
                for i in range(per_round):
                    started = time.perf_counter()
                    runner["run"](frames[i % len(frames)])
                    runner["ms"].append((time.perf_counter() - started) * 1e3)
        print(f"  {size}px round {round_number + 1}/{args.rounds}", flush=True)
    for name, runner in runners.items():
        row = {"size": size, "runner": name, "format": runner["format"], "precision": runner["precision"],
               "model_mb": round(runner["mb"], 2), "miou": runner.get("miou")}
        if "session" in runner:
            timing = runner["session"].loop.times.summary()["end_to_end"]
            row["p50_ms"], row["p99_ms"] = timing["p50_ms"], timing["p99_ms"]
            runner["session"].close()
            path = runner["bundle"]
            throughput = InspectionSession(RunOptions(path, MemorySource(frames, 40 + 4 * per_round * args.rounds // 2),
                                                      throughput=True, status=False))
            throughput.loop.run(max_frames=40)
            started, first = time.perf_counter(), throughput.loop.frames
            throughput.loop.run()
            row["fps"] = (throughput.loop.frames - first) / (time.perf_counter() - started)
            throughput.close()
            if path.name.startswith("openvino"):
                precision = runner["manifest"]["engine"]["inference_precision"]
                row["limit_fps"] = throughput_fps(benchmark_app(path / "model.xml", precision, "throughput",
                                                                 args.benchmark_app_seconds))
                row["limit_latency_ms"] = median_latency_ms(benchmark_app(path / "model.xml", precision, "latency",
                                                                         args.benchmark_app_seconds))
                row["fps_vs_limit"] = row["fps"] / row["limit_fps"]
                row["latency_vs_limit"] = row["p50_ms"] / row["limit_latency_ms"]
        else:
            row["p50_ms"] = float(np.median(runner["ms"]))
            row["p99_ms"] = float(np.percentile(runner["ms"], 99))
            row["fps"] = 1000 / row["p50_ms"]
        rows.append(row)
        print("  " + json.dumps(row), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| size | runner | format | precision | MB | val mIoU | p50 ms | p99 ms | FPS | FPS ÷ limit | "
             "p50 ÷ limit |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        miou = f"{r['miou']:.4f}" if r.get("miou") is not None else ""
        limit = f"{r['fps_vs_limit']:.2f} ({r['limit_fps']:.0f})" if "limit_fps" in r else ""
        latency = f"{r['latency_vs_limit']:.2f} ({r['limit_latency_ms']:.2f})" if "limit_latency_ms" in r else ""
        lines.append(f"| {r['size']} | {r['runner']} | {r['format']} | {r['precision']} | {r['model_mb']:.1f} | "
                     f"{miou} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['fps']:.1f} | {limit} | {latency} |")
    return "\n".join(lines)


def plot_scaling(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    runners = list(dict.fromkeys(r["runner"] for r in rows))
    ax.set_prop_cycle(color=plt.get_cmap("tab20").colors[:len(runners)])  # one colour per runner
    for runner in runners:
        these = sorted((r for r in rows if r["runner"] == runner), key=lambda r: r["size"])
        style = "-" if runner.startswith("edgeseg") else "--"
        ax.plot([r["size"] ** 2 / 1e6 for r in these], [r["p50_ms"] for r in these], style, marker="o", label=runner)
    ax.set(xscale="log", yscale="log", xlabel="model input (megapixels; 256², 512², 1024²)",
           ylabel="p50 ms per 1280x1024 frame, end to end",
           title="Cost against pixels, magnetic-tile U-Net, 2 CPU cores")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    from edgeseg.training.plots import save_small_png

    save_small_png(fig, path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="the trained model (needed unless --replot)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--iterations", type=int, default=100, help="frames per runner at 256 px (fewer above)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--val-frames", type=int, default=200, help="val photos each new bundle proves itself on")
    parser.add_argument("--benchmark-app-seconds", type=int, default=10)
    parser.add_argument("--accuracy-control-at", type=int, nargs="*", default=[256],
                        help="sizes whose int8 bundles use NNCF accuracy control (default 256, where plain int8 "
                             "loses 5 mIoU points)")
    parser.add_argument("--reuse-from", type=Path, help="a folder of SIZEpx/BACKEND-PRECISION bundles to time "
                                                        "instead of building them (e.g. the engine benchmark's run/)")
    parser.add_argument("--rebuild", nargs="*", default=[], help="backends whose bundles --reuse-from must not "
                                                                 "supply (built by an older edgeseg)")
    parser.add_argument("--out", type=Path, help="default: results/compare/MODEL/MACHINE-DATE")
    parser.add_argument("--replot", action="store_true", help="only redraw table.md and scaling.png from results.json")
    args = parser.parse_args()
    if not args.replot:
        if args.checkpoint is None:
            parser.error("--checkpoint is required")
        args.checkpoint = checkpoint_at(args.checkpoint)  # refused before minutes of building
    if args.replot:
        if args.out is None:
            parser.error("--replot needs --out")
        if not (args.out / "results.json").is_file():
            parser.error(f"{args.out / 'results.json'} not found: run the benchmark first (--checkpoint)")
        rows = json.loads((args.out / "results.json").read_text())["rows"]
        (args.out / "table.md").write_text(table(rows) + "\n")
        plot_scaling(rows, args.out / "scaling.png")
        return
    import torch

    torch.set_num_threads(2)
    args.out = args.out or result_folder("compare", model_of(args.checkpoint))
    write_run_json(args.out)
    args.cases, left_out = runnable_cases(CASES)
    args.out.mkdir(parents=True, exist_ok=True)
    frames = stream_frames(args.data, 32)
    rows = []
    for size in args.sizes:
        rows += bench_size(size, frames, args)
        (args.out / "results.json").write_text(json.dumps({"rows": rows}, indent=1))
    result = {"date": date.today().isoformat(), "cpu": cpu_name(), "threads": 2, "frame": [FRAME_H, FRAME_W],
              "checkpoint": str(args.checkpoint), "rows": rows, "left_out": left_out}
    (args.out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "table.md").write_text(table(rows) + left_out_notes(left_out) + "\n")
    plot_scaling(rows, args.out / "scaling.png")
    print(table(rows))


if __name__ == "__main__":
    run_main(main)
