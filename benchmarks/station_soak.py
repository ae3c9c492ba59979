"""Benchmark: a station soak. Several cameras (frames from memory, 1280x1024 Mono8 magnetic-tile
photos) through one shared 256 px bundle for a number of frames in all, reporting to a real MQTT
broker (Debian's mosquitto) that can be stopped for a while mid-run.

Reports aggregate frames per second against ``benchmark_app -hint throughput`` on the same IR
(the mean of a run right before and one right after the soak), per-camera end-to-end p99, RSS
sampled over the run (its slope after warm-up) and the MQTT messages the plant received. Targets:
fps >= 0.9x benchmark_app; no RSS growth after warm-up; every frame's message delivered, with the
broker stopped or not.

    .venv/bin/python benchmarks/station_soak.py --bundle BUNDLE [--frames 100000] [--outage 60]
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import yaml

from common import DEFAULT_DATA, benchmark_app, cpu_name, result_folder, run_main, throughput_fps, write_run_json
from edgeseg.engines.bundle import Bundle
from edgeseg.runtime.sources.memory import MemorySource
from edgeseg.station.config import read_station
from edgeseg.station.service import Station
from runtime_magnetic_tile import stream_frames

HERE = Path(__file__).resolve().parent


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Plant:
    """The broker's other side: a subscriber with a persistent session that counts messages."""

    def __init__(self, port: int):
        from media import subscribe

        self.seen: dict[tuple[str, str], bytearray] = {}  # per camera and run, a flag per frame index:
        self.messages = 0  # a set of 100,000 tuples would grow this process by ~20 MB, a flag array does not
        self.lock = threading.Lock()
        self.client = subscribe(port, "soak-plant", self._on_message)

    def _on_message(self, message) -> None:
        if not message.topic.endswith("/results"):
            return
        line = json.loads(message.payload)
        with self.lock:
            self.messages += 1
            flags = self.seen.setdefault((line["camera"], line["run"]), bytearray())
            if line["index"] >= len(flags):
                flags.extend(bytes(line["index"] + 1 - len(flags) + 4096))
            flags[line["index"]] = 1

    def distinct(self) -> int:
        with self.lock:
            return sum(flags.count(1) for flags in self.seen.values())


def station_file(out: Path, bundle: Path, cameras: int, port: int) -> Path:
    config = {"station": "soak", "results": str((out / "run" / "results").resolve()), "metrics": None,
              "watchdog_seconds": 0,
              "mqtt": {"port": port, "queue_mb": 512},
              "cameras": [{"name": f"cam{i}", "source": f"memory://cam{i}", "bundle": str(bundle.resolve())}
                          for i in range(cameras)]}
    path = out / "run" / "station.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


def soak(args, frames: list[np.ndarray], port: int, broker_dir: Path) -> dict:
    from media import start_broker, stop

    broker = start_broker(port, broker_dir)
    plant = Plant(port)
    per_camera = args.frames // args.cameras
    sources = {f"cam{i}": (lambda: MemorySource(frames, per_camera)) for i in range(args.cameras)}
    station = Station(read_station(station_file(args.out, args.bundle, args.cameras, port)), sources=sources)
    rss, started = [], time.perf_counter()
    runner = threading.Thread(target=station.run, daemon=True)
    runner.start()
    outage, back_at = None, None
    while runner.is_alive():
        runner.join(2.0)
        now = time.perf_counter() - started
        done = sum(p.session.loop.frames if p.session else p.frames for p in station.pipelines)
        rss.append((now, rss_mb(), done))
        if args.outage and outage is None and done >= args.frames * 0.3:
            stop(broker)  # the broker goes away; results queue on disk meanwhile
            outage, back_at = (now, args.outage), now + args.outage
        if back_at is not None and now >= back_at:
            broker, back_at = start_broker(port, broker_dir), None
    seconds = time.perf_counter() - started
    total = sum(p.frames for p in station.pipelines)
    deadline = time.monotonic() + 120
    while plant.distinct() < total and time.monotonic() < deadline:
        time.sleep(1)
    plant.client.loop_stop()
    stop(broker)
    return {"frames": total, "seconds": round(seconds, 1), "fps": round(total / seconds, 1),
            "p99_ms": camera_p99(args.out), "rss": rss, "outage": outage,
            "mqtt_distinct": plant.distinct(), "mqtt_messages": plant.messages}


def camera_p99(out: Path) -> dict:
    """Each camera's end-to-end p99 of its last run (runs.jsonl)."""
    p99 = {}
    for runs in sorted((out / "run" / "results").glob("*/runs.jsonl")):
        report = json.loads(runs.read_text().splitlines()[-1])
        p99[runs.parent.name] = report["timing_ms"]["end_to_end"]["p99_ms"]
    return p99


def rss_slope(rss: list, warmup: float = 0.2) -> float:
    """MB per 10,000 frames after the first ``warmup`` share of the run (least squares)."""
    kept = rss[int(len(rss) * warmup):]
    if len(kept) < 3:
        return float("nan")
    frames, mb = np.array([r[2] for r in kept], float), np.array([r[1] for r in kept], float)
    return float(np.polyfit(frames, mb, 1)[0] * 10_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True, help="an OpenVINO bundle of the magnetic-tile model")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--frames", type=int, default=100_000, help="frames in all, over every camera")
    parser.add_argument("--outage", type=float, default=0.0, help="seconds the broker is stopped, a third in")
    parser.add_argument("--benchmark-app-seconds", type=int, default=15)
    parser.add_argument("--out", type=Path, help="default: results/station/MODEL/MACHINE-DATE[-outage]")
    args = parser.parse_args()
    import sys

    sys.path.insert(0, str(HERE.parent / "tests"))  # media.py: the broker the tests start, the same way
    bundle = Bundle.read(args.bundle)
    args.out = args.out or result_folder("station", bundle.manifest["model"]["arch"],
                                         "outage" if args.outage else "")
    write_run_json(args.out)
    frames = stream_frames(args.data, 32)
    from media import free_port

    def limit() -> float:
        return throughput_fps(benchmark_app(args.bundle / "model.xml",
                                            bundle.manifest["engine"]["inference_precision"], "throughput",
                                            args.benchmark_app_seconds))

    before = limit()  # benchmark_app right before and right after: this shared machine's pace drifts
    result = soak(args, frames, free_port(), args.out / "run" / "broker")
    after = limit()
    result.update(benchmark_app_fps=round((before + after) / 2, 1), benchmark_app_fps_before_after=[before, after],
                  fps_vs_benchmark_app=round(result["fps"] / ((before + after) / 2), 3),
                  rss_slope_mb_per_10k_frames=round(rss_slope(result["rss"]), 3), cpu=cpu_name(),
                  cameras=args.cameras, bundle=str(args.bundle), pid=os.getpid())
    (args.out / "results.json").write_text(json.dumps(result, separators=(",", ":")) + "\n")
    (args.out / "table.md").write_text(table(result) + "\n")
    print(table(result))


def table(r: dict) -> str:
    rss = [mb for _, mb, _ in r["rss"]]
    p99 = ", ".join(f"{camera} {ms:.1f}" for camera, ms in r["p99_ms"].items())
    outage = f"{r['outage'][1]:.0f} s at {r['outage'][0]:.0f} s" if r["outage"] else "no"
    header = ("| cameras | frames | seconds | fps (÷ benchmark_app) | e2e p99 per camera, ms "
              "| RSS MB (start / end / max) | RSS slope after warm-up, MB per 10k frames "
              "| MQTT: distinct frames received (messages) | broker stopped |")
    before, after = r["benchmark_app_fps_before_after"]
    row = (f"| {r['cameras']} | {r['frames']} | {r['seconds']} | {r['fps']} ({r['fps_vs_benchmark_app']:.2f}; "
           f"benchmark_app {r['benchmark_app_fps']:.1f}: {before} before, {after} after) | {p99} "
           f"| {rss[0]:.0f} / {rss[-1]:.0f} / {max(rss):.0f} | "
           f"{r['rss_slope_mb_per_10k_frames']} | {r['mqtt_distinct']} of {r['frames']} ({r['mqtt_messages']}) "
           f"| {outage} |")
    return "\n".join([header, "|---|---|---|---|---|---|---|---|---|", row])


if __name__ == "__main__":
    run_main(main)
