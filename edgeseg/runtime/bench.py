"""``edgeseg bench``: the runtime's own loop timed on a frame stream held in memory, in latency
mode (one request) and throughput mode (requests in flight): per-stage p50/p90/p99/max, frames
per second and peak memory, as JSON and a PNG a person reads at a glance."""

from __future__ import annotations

import math
import platform
import resource
import time
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from edgeseg.engines import Bundle
from edgeseg.errors import ConfigError, SourceError
from edgeseg.progress import progress
from edgeseg.runtime.session import InspectionSession, RunOptions
from edgeseg.runtime.sources import BadFrame, open_source
from edgeseg.runtime.sources.memory import MemorySource

MODES = ("latency", "throughput")


@dataclass
class BenchOptions:
    bundle: Path
    _: KW_ONLY  # the rest by name
    frames: str | None = None  # a source URI to take frames from; default: synthetic inspection images
    width: int = 1280
    height: int = 1024
    iterations: int = 300
    duration: float | None = None  # seconds per mode, instead of iterations
    warmup: int = 30
    modes: tuple[str, ...] = MODES
    requests: int | None = None
    rules: Path | None = None
    tile: bool = False
    engine_options: dict = field(default_factory=dict)


def bench_frames(uri: str | None, width: int, height: int, channels: int, count: int = 32) -> list[np.ndarray]:
    """Frames at width x height: read from a source (mono or colour as the model takes them), or
    synthetic inspection surfaces when none is given."""
    frames = []
    if uri is None:
        from edgeseg.data.synth import synth_sample

        for i in range(count):
            image, _, _ = synth_sample(7, i, 256, color=channels == 3, defect_free=0.5)
            frames.append(cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR))
        return frames
    source = open_source(uri)
    source.open()
    try:
        while len(frames) < count:
            try:
                frame = source.read(None)
            except BadFrame:
                continue
            if frame is None:
                break
            if channels == 1 and frame.ndim == 3:
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            frames.append(cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR))
    finally:
        source.close()
    if not frames:
        raise SourceError("gave no frame to benchmark with", uri)
    return frames


def _measure(session: InspectionSession, opts: BenchOptions, label: str, show_progress: bool) -> dict:
    loop = session.loop
    loop.run(max_frames=opts.warmup)
    loop.times.reset()
    first = loop.frames
    timed = opts.duration is not None
    with progress(total=None if timed else opts.iterations, desc=label, unit="frame", disable=not show_progress,
                  leave=False) as bar:
        started = time.perf_counter()
        deadline = started + opts.duration if opts.duration is not None else math.inf  # counted from the run's start

        def tick() -> None:
            bar.update(1)
            if time.perf_counter() >= deadline:
                loop.stop()

        loop.on_frame = tick
        loop.run(max_frames=None if timed else first + opts.iterations)  # one run: requests stay in flight
        seconds = time.perf_counter() - started
        loop.on_frame = None
    frames = loop.frames - first
    return {"frames": frames, "seconds": round(seconds, 3), "fps": round(frames / seconds, 2),
            "requests": loop.engine.requests, "timing_ms": loop.times.summary(),
            "end_to_end_ms": [round(v * 1e3, 4) for v in loop.times.recent("end_to_end")]}


def run_bench(opts: BenchOptions, show_progress: bool = True) -> dict:
    unknown = set(opts.modes) - set(MODES)
    if unknown or not opts.modes:
        raise ConfigError(f"unknown mode {', '.join(sorted(unknown)) or '(none)'}", fix="modes: latency, throughput")
    if opts.iterations < 1 or opts.warmup < 0:
        raise ConfigError("iterations must be at least 1 and warm-up at least 0")
    bundle = Bundle.read(opts.bundle)
    manifest = bundle.manifest
    frames = bench_frames(opts.frames, opts.width, opts.height, manifest["input"]["channels"])
    color_order = "rgb" if manifest["input"]["color_order"] == "rgb" else "bgr"
    result = {"bundle": str(opts.bundle), "backend": bundle.backend, "precision": manifest["precision"],
              "model_input": [manifest["input"]["height"], manifest["input"]["width"]],
              "frame": [opts.height, opts.width], "frames_from": opts.frames or "synthetic",
              "mode": "tile" if opts.tile else "resize",
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": _machine()}
    for mode in opts.modes:
        throughput = mode == "throughput" and not opts.tile
        with InspectionSession(RunOptions(
                opts.bundle, MemorySource(frames, color_order=color_order), rules=opts.rules,
                mode="tile" if opts.tile else "resize", throughput=throughput, requests=opts.requests,
                engine_options=dict(opts.engine_options), status=False)) as session:
            result[mode] = _measure(session, opts, mode, show_progress)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def _machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}


def render(result: dict) -> str:
    lines = [f"{result['backend']} {result['precision']}, {result['model_input'][1]}x{result['model_input'][0]} "
             f"model, {result['frame'][1]}x{result['frame'][0]} frames ({result['frames_from']}), "
             f"peak RSS {result['peak_rss_mb']:.0f} MB"]
    for mode in MODES:
        if mode not in result:
            continue
        r = result[mode]
        lines.append(f"\n{mode}: {r['fps']:.1f} fps over {r['frames']} frames, {r['requests']} request(s)")
        lines.append(f"  {'stage':<13}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}  ms")
        for stage, s in r["timing_ms"].items():
            lines.append(f"  {stage:<13}{s['p50_ms']:>9.2f}{s['p90_ms']:>9.2f}{s['p99_ms']:>9.2f}{s['max_ms']:>9.2f}")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> bool:
    """Latency histogram and per-stage breakdown; False where matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [m for m in MODES if m in result]
    fig, (hist, stages) = plt.subplots(1, 2, figsize=(11, 4.2))
    for mode, color in zip(modes, ("tab:blue", "tab:orange"), strict=False):
        values = np.array(result[mode]["end_to_end_ms"])
        timing = result[mode]["timing_ms"]["end_to_end"]
        hist.hist(values, bins=50, alpha=0.6, color=color, label=f"{mode} ({result[mode]['fps']:.0f} fps)")
        for key, style in (("p50_ms", "-"), ("p99_ms", "--")):
            hist.axvline(timing[key], color=color, linestyle=style, linewidth=1)
    hist.set(xlabel="end-to-end latency per frame (ms); lines: p50, p99 (dashed)", ylabel="frames",
             title=f"{result['backend']} {result['precision']}, {result['frame'][1]}x{result['frame'][0]} frames")
    hist.legend(fontsize=8)
    names = ["capture_wait", "preprocess", "infer", "postprocess", "sink"]
    x = np.arange(len(names))
    width = 0.8 / len(modes)
    for i, (mode, color) in enumerate(zip(modes, ("tab:blue", "tab:orange"), strict=False)):
        timing = result[mode]["timing_ms"]
        stages.bar(x + i * width - 0.4 + width / 2, [timing[n]["p50_ms"] for n in names], width, color=color,
                   label=mode)
    stages.set_xticks(x, [n.replace("_", " ") for n in names], fontsize=8)
    stages.set(ylabel="p50 ms", title="where the time goes, per stage")
    stages.legend(fontsize=8)
    for axis in (hist, stages):
        axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
