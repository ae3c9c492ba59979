"""Benchmark: memory of a run that writes the overlay video. One session streams magnetic-tile
photos from memory through a bundle with ``--video``, twice in one process run: in one-minute
segments (edgeseg's default) and as one segment for the whole run (one MP4 as edgeseg wrote
before segments, whose muxer index grows with every frame). A sink of its own samples RSS every
few hundred frames; the slope after warm-up is reported in bytes per frame.

    .venv/bin/python benchmarks/video_memory.py --bundle BUNDLE [--frames 20000] [--shrink 4]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from common import DEFAULT_DATA, cpu_name, result_folder, run_main, write_run_json
from edgeseg.engines.bundle import Bundle
from edgeseg.runtime.session import InspectionSession, RunOptions
from edgeseg.runtime.sinks import FrameResult, Sink
from edgeseg.runtime.sources.memory import MemorySource
from runtime_magnetic_tile import stream_frames
from station_soak import rss_mb

VARIANTS = {"segments of 60 s": 60.0, "one segment": 1e9}


class RssSampler(Sink):
    def __init__(self, every: int):
        self.every, self.samples = every, list[tuple[int, float]]()

    def write(self, result: FrameResult) -> None:
        if result.index % self.every == 0:
            self.samples.append((result.index, rss_mb()))


def slope_bytes_per_frame(samples: list[tuple[int, float]], warmup: float = 0.2) -> float:
    kept = samples[int(len(samples) * warmup):]
    frames, mb = np.array([s[0] for s in kept], float), np.array([s[1] for s in kept], float)
    return float(np.polyfit(frames, mb, 1)[0] * 2**20)


def one_run(bundle: Path, frames: list[np.ndarray], count: int, segment: float, out: Path) -> dict:
    sampler = RssSampler(every=max(1, count // 100))
    options = RunOptions(bundle, MemorySource(frames, count), out=out, video=True, video_segment=segment,
                         status=False, archive_quota_mb=None)
    started = time.perf_counter()
    with InspectionSession(options) as session:
        session.sinks.append(sampler)
        summary = session.run()
    return {"frames": summary.frames, "seconds": round(time.perf_counter() - started, 1),
            "segments": len(list((out / "video").glob("*.mp4"))), "rss_mb": sampler.samples,
            "slope_bytes_per_frame": round(slope_bytes_per_frame(sampler.samples), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--shrink", type=int, default=1,
                        help="divide the 1280x1024 photos' sides by this (the muxer's index grows per frame, "
                             "whatever its size; smaller frames encode faster)")
    parser.add_argument("--out", type=Path, help="default: results/video-memory/MODEL/MACHINE-DATE")
    args = parser.parse_args()
    bundle = Bundle.read(args.bundle)
    args.out = args.out or result_folder("video-memory", bundle.manifest["model"]["arch"],
                                         f"shrink{args.shrink}" if args.shrink > 1 else "")
    write_run_json(args.out)
    frames = [cv2.resize(f, (f.shape[1] // args.shrink, f.shape[0] // args.shrink), interpolation=cv2.INTER_AREA)
              for f in stream_frames(args.data, 32)]
    results = {name: one_run(args.bundle, frames, args.frames, segment, args.out / "run" / str(i))
               for i, (name, segment) in enumerate(VARIANTS.items())}
    record = {"cpu": cpu_name(), "bundle": str(args.bundle), "frame_shape": list(frames[0].shape), **results}
    (args.out / "results.json").write_text(json.dumps(record, separators=(",", ":")) + "\n")
    (args.out / "table.md").write_text(table(results) + "\n")
    print(table(results))


def table(results: dict) -> str:
    rows = ["| video written as | frames | segments | RSS MB (start / end) "
            "| RSS slope after warm-up, bytes per frame |",
            "|---|---|---|---|---|"]
    for name, r in results.items():
        rows.append(f"| {name} | {r['frames']} | {r['segments']} | {r['rss_mb'][0][1]:.0f} / {r['rss_mb'][-1][1]:.0f} "
                    f"| {r['slope_bytes_per_frame']} |")
    return "\n".join(rows)


if __name__ == "__main__":
    run_main(main)
