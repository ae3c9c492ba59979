"""``edgeseg bench BUNDLE``: the runtime timed on a frame stream, in latency and throughput mode."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgeseg.cli.engine_flags import add_engine_flags, add_load_policy_flags, engine_options
from edgeseg.cli.values import positive_float, positive_int

ENGINE_FLAGS = ("threads", "hint", "streams", "cuda_graph")  # what a bundle lets a run override


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"give the frame size as WIDTHxHEIGHT, not {text!r}") from None
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError("frames must be at least 16x16")
    return width, height


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="time the runtime on a frame stream: latency, throughput, stages, memory",
                       description="Runs edgeseg run's own loop on frames held in memory (synthetic inspection "
                                   "surfaces, or frames from --frames), after a warm-up, in latency mode (one "
                                   "request) and throughput mode (requests in flight). Prints p50/p90/p99/max per "
                                   "stage, frames per second and peak memory; writes bench.json and bench.png.")
    p.add_argument("bundle")
    p.add_argument("--frames", help="take frames from this source (video, folder, glob, camera); default synthetic")
    p.add_argument("--size", type=_size, default=(1280, 1024), help="frame size WIDTHxHEIGHT (default 1280x1024)")
    p.add_argument("--iterations", type=positive_int, default=300, help="frames timed per mode (default 300)")
    p.add_argument("--duration", type=positive_float, help="seconds per mode, instead of --iterations")
    p.add_argument("--warmup", type=int, default=30, help="frames run before timing (default 30)")
    p.add_argument("--mode", choices=("latency", "throughput", "both"), default="both")
    p.add_argument("--requests", type=positive_int, help="requests in flight in throughput mode (default 4)")
    p.add_argument("--rules", type=Path, help="rules file, as for edgeseg run")
    p.add_argument("--tile", action="store_true", help="tile mode instead of resizing frames")
    p.add_argument("-o", "--out", type=Path, default=Path("bench"), help="folder for bench.json and bench.png")
    add_load_policy_flags(p)
    add_engine_flags(p, ENGINE_FLAGS, for_bundle=True)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edgeseg.runtime.bench import MODES, BenchOptions, plot, render, run_bench

    modes = MODES if args.mode == "both" else (args.mode,)
    from edgeseg.engines import Bundle

    backend = Bundle.read(args.bundle).backend
    opts = BenchOptions(Path(args.bundle), frames=args.frames, width=args.size[0], height=args.size[1],
                        iterations=args.iterations, duration=args.duration, warmup=args.warmup, modes=modes,
                        requests=args.requests, rules=args.rules, tile=args.tile,
                        engine_options=engine_options(args, backend, ENGINE_FLAGS))
    result = run_bench(opts)
    print(render(result))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(result, indent=1) + "\n")
    drawn = plot(result, args.out / "bench.png")
    print(f"\nresults: {args.out / 'bench.json'}" + (f", {args.out / 'bench.png'}" if drawn else
                                                   " (no plot: matplotlib is not installed)"))
    return 0
