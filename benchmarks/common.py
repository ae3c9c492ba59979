"""What every benchmark script shares: the machine's name, where results go, the run record and
OpenVINO's ``benchmark_app``.

Run as ``python benchmarks/NAME.py``: Python puts this folder first on ``sys.path``, so the
scripts import this module (and each other) by name.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_DATA = HERE.parent.parent / "shared" / "datasets" / "magnetic-tile"
# Where the checkpoint the docs measured sits when a copy is there: the repository keeps no
# weights (results/CHECKPOINTS.md: its sha256, and how to train one).
DEFAULT_CHECKPOINT = RESULTS / "train" / "unet-lite" / "epyc-2026-11-26-residual-coarse-seed1" / "best.pt"


def checkpoint_at(path: str | Path) -> Path:
    """``path``, or a clear error where no checkpoint is there."""
    from edgeseg.errors import CheckpointError

    if not Path(path).is_file():
        raise CheckpointError("no checkpoint here (the repository keeps no weights)", path,
                              "train one as benchmarks/results/CHECKPOINTS.md says, and pass --checkpoint")
    return Path(path)


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def machine_tag() -> str:
    """A short name for the kind of CPU, as result folders are named: the kinds our machines have
    been (``xeon-amx``, ``xeon-avx512bf16`` with AVX-512 BF16 but no AMX, ``xeon-cascadelake``,
    ``epyc`` with AVX-512, ``epyc-avx2`` without), else the vendor's."""
    name, flags = cpu_name(), cpu_flags()
    if "AMD" in name or "EPYC" in name:
        kind = "epyc" if "EPYC" in name else "amd"
        return kind if "avx512f" in flags else f"{kind}-avx2"
    if "amx_tile" in flags:
        return "xeon-amx"
    if "avx512_bf16" in flags:
        return "xeon-avx512bf16"
    if "avx512_vnni" in flags:
        return "xeon-cascadelake"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or platform.machine()


def gpu_tag(name: str) -> str:
    """A GPU's name as result folders carry it: ``NVIDIA H200`` -> ``h200``."""
    return re.sub(r"[^a-z0-9]+", "-", re.sub(r"^nvidia\s+", "", name.lower())).strip("-")


def result_folder(benchmark: str, model: str, variant: str = "", on_gpu: bool = False) -> Path:
    """``results/<benchmark>/<model>/<machine>[-<gpu>]-<date>[-<variant>]``: the one way result
    folders are named; ``on_gpu``: the run measured the machine's first NVIDIA GPU, named after the CPU."""
    gpu = gpu_name() if on_gpu else None
    machine = machine_tag() + (f"-{gpu_tag(gpu)}" if gpu else "")
    name = f"{machine}-{date.today().isoformat()}" + (f"-{variant}" if variant else "")
    return RESULTS / benchmark / model / name


def git_commit() -> str:
    run = subprocess.run(["git", "-C", str(HERE), "describe", "--always", "--dirty", "--abbrev=12"],
                         capture_output=True, text=True, check=False)
    return run.stdout.strip() or "unknown"


def gpu_name() -> str | None:
    """The first NVIDIA GPU's name, as nvidia-smi gives it (None where there is none)."""
    if shutil.which("nvidia-smi") is None:
        return None
    query = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                           text=True, check=False)
    return query.stdout.strip().splitlines()[0] if query.returncode == 0 and query.stdout.strip() else None


def write_run_json(out: Path, argv: list[str] | None = None) -> None:
    """``out/run.json``: which commit ran which command on which machine, and when."""
    command = " ".join([".venv/bin/python", *(argv if argv is not None else sys.argv)])
    gpu = gpu_name()
    machine = {"cpu": cpu_name(), "kind": machine_tag(), "cores": len(os.sched_getaffinity(0)),
               **({"gpu": gpu} if gpu else {})}
    record = {"commit": git_commit(), "date": date.today().isoformat(), "machine": machine, "command": command}
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps(record, indent=1) + "\n")


def run_main(main: Callable[[], None]) -> None:
    """Run a benchmark's main: a missing or unreadable input (data, checkpoint, config) ends it
    with edgeseg's one-line error and exit status 2, not a traceback."""
    from edgeseg.errors import EdgesegError

    try:
        main()
    except EdgesegError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def write_results(out: Path, result: dict, table_text: str) -> None:
    """A benchmark's folder: run.json, results.json and table.md (also printed)."""
    write_run_json(out)
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "table.md").write_text(table_text)
    print(table_text)


def benchmark_app(model_xml: Path, precision: str, hint: str, seconds: int, nireq: int | None = None) -> str:
    """What OpenVINO's ``benchmark_app`` prints for one run on the CPU."""
    tool = shutil.which("benchmark_app") or str(Path(sys.executable).parent / "benchmark_app")
    command = [tool, "-m", str(model_xml), "-d", "CPU", "-hint", hint, "-infer_precision", precision,
               "-t", str(seconds), *(["-nireq", str(nireq)] if nireq else [])]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def throughput_fps(benchmark_app_output: str) -> float:
    return float(_field(r"Throughput:\s+([\d.]+)\s+FPS", benchmark_app_output))


def median_latency_ms(benchmark_app_output: str) -> float:
    return float(_field(r"Median:\s+([\d.]+)\s+ms", benchmark_app_output))


def _field(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    if found is None:
        raise RuntimeError(f"benchmark_app printed no line matching {pattern!r}:\n{text[-2000:]}")
    return found.group(1)


def model_of(checkpoint: Path) -> str:
    """The architecture a training checkpoint holds (``unet-lite``, ...), as result folders name it."""
    from edgeseg.training.checkpoint import load_checkpoint

    return str(load_checkpoint(checkpoint)["meta"]["arch"])
