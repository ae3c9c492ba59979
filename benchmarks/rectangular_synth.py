"""Benchmark: the five commands on a non-square data set, with and without rectangular inputs.

A synthetic inspection set (``edgeseg data synth``) is stretched to 3:2 photos, as a camera of
that aspect gives them; then ``data check``, ``train`` (the built-in recipe, for a few minutes),
``export``, ``compile`` (ONNX Runtime fp32) and ``verify`` run twice, once keeping the photos'
aspect (the default) and once square (``--no-keep-aspect``), both with the same shorter side
and the same minutes of training (the 3:2 input costs 1.5x per step, so it sees fewer epochs).
The table compares defect mIoU at frame and model size, crack IoU, escapes and false rejects.

    .venv/bin/python benchmarks/rectangular_synth.py [--minutes 5] [--count 400]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import cv2

from common import cpu_name, result_folder, run_main, write_run_json
from edgeseg.data.frames import MASK_RESIZE


def edgeseg(*args) -> str:
    run = subprocess.run([sys.executable, "-m", "edgeseg", *map(str, args)], capture_output=True, text=True)
    if run.returncode not in (0, 1):
        raise SystemExit(f"edgeseg {' '.join(map(str, args))} failed:\n{run.stderr[-2000:]}")
    return run.stdout


def wide_data(out: Path, count: int, width: int, height: int) -> Path:
    data = out / "data"
    if not (data / "classes.csv").is_file():
        edgeseg("data", "synth", "-o", data, "--count", count, "--size", height)
        # masks centre to centre, as the images are mapped: plain nearest would shift labels by up to a pixel
        for folder, interpolation in (("images", cv2.INTER_LINEAR), ("masks", MASK_RESIZE)):
            for path in (data / folder).iterdir():
                image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
                cv2.imwrite(str(path), cv2.resize(image, (width, height), interpolation=interpolation))
    return data


def five_commands(data: Path, out: Path, minutes: float, size: int, square: bool) -> dict:
    check = edgeseg("data", "check", data)
    edgeseg("train", data, "-o", out / "run", "--input-size", size, "--max-minutes", minutes, "--seed", 0,
            *(["--no-keep-aspect"] if square else []))
    edgeseg("export", out / "run" / "best.pt", "-o", out / "model.onnx")
    edgeseg("compile", out / "model.onnx", "--backend", "onnxruntime", "--data", data, "-o", out / "bundle")
    report = json.loads(edgeseg("verify", out / "bundle", "--data", data, "--json"))
    accuracy, parts = report["accuracy"], report["parts"]
    spec = json.loads((out / "bundle" / "manifest.json").read_text())["input"]
    return {"input": f"{spec['width']}x{spec['height']}", "data_check_ok": "FAILED" not in check,
            "frame_size": accuracy["engine_frame_size"], "model_size": accuracy["engine"],
            "escapes": f"{parts['escapes']} of {parts['defective']}",
            "false_rejects": f"{parts['false_rejects']} of {parts['good']}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="training time of each run")
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--size", type=int, default=128, help="--input-size: the shorter side")
    parser.add_argument("--out", type=Path, help="default: results/rectangular/mobile-lraspp/MACHINE-DATE")
    args = parser.parse_args()
    args.out = args.out or result_folder("rectangular", "mobile-lraspp")
    write_run_json(args.out)
    data = wide_data(args.out / "run", args.count, args.size * 3 // 2 * 2, args.size * 2)
    results = {name: five_commands(data, args.out / "run" / name, args.minutes, args.size, square)
               for name, square in (("keeps the aspect", False), ("square", True))}
    (args.out / "results.json").write_text(json.dumps({"cpu": cpu_name(), **results}, separators=(",", ":")) + "\n")
    (args.out / "table.md").write_text(table(results) + "\n")
    print(table(results))


def table(results: dict) -> str:
    rows = ["| input | size | defect mIoU at frame size | at model size | crack IoU at frame size | escapes | "
            "false rejects |", "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        rows.append(f"| {name} | {r['input']} | {r['frame_size']['defect_miou']:.3f} | "
                    f"{r['model_size']['defect_miou']:.3f} | {r['frame_size']['per_class_iou'].get('crack')} | "
                    f"{r['escapes']} | {r['false_rejects']} |")
    return "\n".join(rows)


if __name__ == "__main__":
    run_main(main)
