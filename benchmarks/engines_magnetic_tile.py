"""Benchmark: the magnetic-tile model from the training benchmark, compiled for every backend x
precision, at 256 and 512 px, against PyTorch eager fp32 in the same run.

For each size: export the checkpoint to ONNX, compile bundles (int8 calibrated on 300 train
frames), each proving itself on the 247 val images (mIoU against ground truth, pixel agreement
with the fp32 graph); then time each engine's own ``infer()`` (one request, uint8 frame in, mask
and confidence out) and PyTorch eager running the same deploy graph. Medians of many runs.
Engines are timed after all are built, in interleaved rounds. Targets: int8 loses <= 1.0 mIoU
point and is the fastest; OpenVINO bf16 or int8 >= 4x faster than PyTorch eager fp32.

    .venv/bin/python benchmarks/engines_magnetic_tile.py [--checkpoint best.pt] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

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
from edgeseg.engines.bundle import Bundle
from edgeseg.export.compile import CompileOptions, compile_bundle
from edgeseg.export.deploy_graph import DeployGraph
from edgeseg.export.onnx_export import ExportOptions, export_onnx
from edgeseg.training.checkpoint import load_checkpoint, model_from_checkpoint

CASES = [("openvino", "fp32"), ("openvino", "fp16"), ("openvino", "bf16"), ("openvino", "int8"),
         ("onnxruntime", "fp32"), ("onnxruntime", "fp16"), ("onnxruntime", "int8")]


def interleaved_p50(runners: dict, frames: np.ndarray, iterations: int, rounds: int = 5) -> dict:
    """Median latency (ms) of each ``(load, run)`` pair, timed in interleaved rounds so that the
    machine's drift over the run hits every engine alike. A new frame is loaded before each run
    (not timed)."""
    times = {name: [] for name in runners}
    per_round = max(1, iterations // rounds)
    for load, run in runners.values():  # warm-up
        for i in range(10):
            load(frames[i % len(frames)])
            run()
    for _ in range(rounds):
        for name, (load, run) in runners.items():
            for i in range(per_round):
                load(frames[i % len(frames)])
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def torch_eager(checkpoint: Path, shape: tuple):
    state = load_checkpoint(checkpoint)
    meta = state["meta"]
    graph = DeployGraph(model_from_checkpoint(state), meta["normalization"]["mean"], meta["normalization"]["std"],
                        meta["input"]["color_order"], meta["input"]["color_order"], True).eval()
    x = torch.zeros((1, *shape), dtype=torch.uint8)

    def load(frame):
        x[0] = torch.from_numpy(frame)

    def run():
        with torch.no_grad():
            graph(x)
    return load, run


def runnable_cases(cases: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The cases this machine can run, and why each other one was left out (OpenVINO bf16 on a
    CPU without AMX or AVX-512 BF16: there is nothing to measure there, not a slow result)."""
    from edgeseg.engines.openvino_engine import inference_precision
    from edgeseg.errors import EngineError

    kept, left_out = [], {}
    for backend, precision in cases:
        try:
            if backend == "openvino":
                inference_precision(precision, "CPU")
        except EngineError as e:
            left_out[f"{backend}:{precision}"] = e.what
            print(f"left out {backend} {precision}: {e.what}", flush=True)
            continue
        kept.append((backend, precision))
    return kept, left_out


def left_out_notes(left_out: dict[str, str]) -> str:
    """What runnable_cases left out, as lines to put under a results table."""
    return "".join(f"\n\nNot run on this CPU: {case} ({why})" for case, why in left_out.items())


def build_or_reuse(graph: Path, bundle: Path, backend: str, precision: str, args) -> tuple[dict, float | None]:
    if args.reuse and (bundle / "manifest.json").is_file():
        return Bundle.read(bundle).manifest, None
    started = time.perf_counter()
    result = compile_bundle(CompileOptions(
        str(graph), str(bundle), backend=backend, precision=precision, calib=str(args.data),
        data=str(args.data), force=True, accuracy_control=args.accuracy_control and precision == "int8"),
        show_progress=False)
    return result.manifest, time.perf_counter() - started


def bench_size(size: int, args, out: Path) -> list[dict]:
    work = out / "run" / f"{size}px"
    work.mkdir(parents=True, exist_ok=True)
    graph = work / "model.onnx"
    if not (args.reuse and graph.is_file()):
        export_onnx(ExportOptions(str(args.checkpoint), str(graph), data=str(args.data), height=size, width=size),
                    show_progress=False)
    frames = load_frames(args.data, 1, size, size, 64, split="val", with_masks=False).frames
    rows, engines = [], {}
    for backend, precision in args.cases:
        manifest, build_s = build_or_reuse(graph, work / f"{backend}-{precision}", backend, precision, args)
        parity = manifest["parity"]
        calibration = manifest.get("calibration") or {}
        rows.append({"size": size, "backend": backend, "precision": precision,
                     "inference_precision": manifest["engine"].get("inference_precision"),
                     "accuracy_control": bool(calibration.get("accuracy_control")),
                     "miou": parity["engine"]["miou"], "defect_miou": parity["engine"]["defect_miou"],
                     "fp32_miou": parity["reference"]["miou"], "miou_drop_points": 100 * parity["miou_drop"],
                     "agreement": parity["pixel_agreement"], "gate_passed": parity["passed"], "rule": parity["rule"],
                     "model_mb": sum(e["bytes"] for n, e in manifest["files"].items() if n != "reference.onnx") / 1e6,
                     "build_s": build_s})
        print(f"{size}px {backend} {precision}: mIoU {rows[-1]['miou']:.4f} (fp32 {rows[-1]['fp32_miou']:.4f}), "
              f"agreement {100 * rows[-1]['agreement']:.3f} %, gate {'passed' if parity['passed'] else 'FAILED'}",
              flush=True)
    runners = {("pytorch-eager", "fp32"): torch_eager(args.checkpoint, frames.shape[1:])}
    for backend, precision in args.cases:
        engine = open_engine(work / f"{backend}-{precision}")
        engines[(backend, precision)] = engine
        runners[(backend, precision)] = (lambda f, e=engine: e.input.__setitem__(0, f), engine.infer)
    iterations = args.iterations if size <= 256 else max(30, args.iterations // 3)
    p50 = interleaved_p50(runners, frames, iterations)
    for engine in engines.values():
        engine.close()
    rows.insert(0, {"size": size, "backend": "pytorch-eager", "precision": "fp32"})
    for row in rows:
        row["p50_ms"] = p50[(row["backend"], row["precision"])]
        row["speedup_vs_eager"] = p50[("pytorch-eager", "fp32")] / row["p50_ms"]
        print(f"{size}px {row['backend']} {row['precision']}: p50 {row['p50_ms']:.2f} ms "
              f"({row['speedup_vs_eager']:.1f}x eager)", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| size | backend | precision | val mIoU | Δ vs fp32 (points) | agreement with fp32 | p50 ms | "
             "x eager | gate |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["backend"] == "pytorch-eager":
            lines.append(f"| {r['size']} | PyTorch eager | fp32 | | | | {r['p50_ms']:.2f} | 1.0 | |")
            continue
        precision = r["precision"] + (" (accuracy control)" if r.get("accuracy_control") else "")
        lines.append(f"| {r['size']} | {r['backend']} | {precision} | {r['miou']:.4f} | "
                     f"{-r['miou_drop_points']:+.2f} | {100 * r['agreement']:.2f} % | {r['p50_ms']:.2f} | "
                     f"{r['speedup_vs_eager']:.1f} | {'pass' if r['gate_passed'] else 'FAIL'} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["size"] for r in rows})
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.5))
    for ax, size in zip(np.atleast_1d(axes), sizes, strict=True):
        these = [r for r in rows if r["size"] == size]
        short = {"pytorch-eager": "PyTorch", "openvino": "OpenVINO", "onnxruntime": "ORT"}
        labels = [f"{short.get(r['backend'], r['backend'])}\n{r['precision']}" for r in these]
        colors = ["tab:gray" if r["backend"] == "pytorch-eager" else
                  "tab:blue" if r["backend"] == "openvino" else "tab:orange" for r in these]
        ax.bar(range(len(these)), [r["p50_ms"] for r in these], color=colors)
        ax.set_xticks(range(len(these)), labels, fontsize=8)
        ax.set(ylabel="p50 latency per frame (ms)", title=f"{size} x {size} px, 2 CPU cores")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    from edgeseg.training.plots import save_small_png

    save_small_png(fig, path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--cases", nargs="+", default=[f"{b}:{p}" for b, p in CASES],
                        help="backend:precision pairs (default: all)")
    parser.add_argument("--accuracy-control", action="store_true", help="int8 with NNCF accuracy control")
    parser.add_argument("--reuse", action="store_true", help="time bundles already built in --out instead of "
                                                             "building them again")
    parser.add_argument("--out", type=Path, help="default: results/engines/MODEL/MACHINE-DATE")
    args = parser.parse_args()
    args.checkpoint = checkpoint_at(args.checkpoint)
    args.out = args.out or result_folder("engines", model_of(args.checkpoint))
    write_run_json(args.out)
    args.cases, left_out = runnable_cases([tuple(case.split(":")) for case in args.cases])
    torch.set_num_threads(2)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [row for size in args.sizes for row in bench_size(size, args, args.out)]
    summary = {"date": date.today().isoformat(), "cpu": cpu_name(), "threads": 2,
               "checkpoint": str(args.checkpoint), "rows": rows, "left_out": left_out}
    (args.out / "results.json").write_text(json.dumps(summary, indent=2))
    (args.out / "table.md").write_text(table(rows) + left_out_notes(left_out) + "\n")
    plot(rows, args.out / "latency.png")
    print(table(rows))


if __name__ == "__main__":
    run_main(main)
