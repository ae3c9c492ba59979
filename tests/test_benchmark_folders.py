"""Result folders say which machine measured them: the CPU kind, and the GPU where one ran."""

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "benchmarks_common", Path(__file__).resolve().parents[1] / "benchmarks" / "common.py")
assert _SPEC is not None and _SPEC.loader is not None
common = importlib.util.module_from_spec(_SPEC)  # the scripts import it by name from their folder
_SPEC.loader.exec_module(common)


@pytest.mark.parametrize("name, tag", [("NVIDIA H200", "h200"), ("NVIDIA GeForce RTX 4090", "geforce-rtx-4090"),
                                       ("Orin (nvgpu)", "orin-nvgpu")])
def test_a_gpu_is_named_short(name, tag):
    assert common.gpu_tag(name) == tag


@pytest.mark.parametrize("name, flags, tag", [
    ("Intel(R) Xeon(R) Platinum 8480+", {"avx512f", "avx512_bf16", "amx_tile"}, "xeon-amx"),
    ("Intel(R) Xeon(R) Processor", {"avx512f", "avx512_vnni", "avx512_bf16"}, "xeon-avx512bf16"),
    ("Intel(R) Xeon(R) Platinum 8259CL", {"avx512f", "avx512_vnni"}, "xeon-cascadelake"),
    ("AMD EPYC 9R14", {"avx512f", "avx512_bf16"}, "epyc"),
    ("AMD EPYC 7R13", {"avx2"}, "epyc-avx2"),
    ("Intel(R) Core(TM) i7-8700", {"avx2"}, "intel-r-core-tm-i7-8700")])
def test_a_cpu_is_named_by_the_features_training_speed_hangs_on(monkeypatch, name, flags, tag):
    monkeypatch.setattr(common, "cpu_name", lambda: name)
    monkeypatch.setattr(common, "cpu_flags", lambda: flags)
    assert common.machine_tag() == tag


def test_a_gpu_run_names_the_gpu_after_the_cpu_and_a_cpu_run_does_not(monkeypatch):
    monkeypatch.setattr(common, "machine_tag", lambda: "xeon-amx")
    monkeypatch.setattr(common, "gpu_name", lambda: "NVIDIA H200")
    on_gpu = common.result_folder("train", "mobile-lraspp", "seed0", on_gpu=True)
    on_cpu = common.result_folder("train", "mobile-lraspp", "seed0")
    assert on_gpu.name.startswith("xeon-amx-h200-") and on_gpu.name.endswith("-seed0")
    assert on_cpu.name.startswith("xeon-amx-2") and on_gpu.parent == on_cpu.parent


def test_a_gpu_run_on_a_machine_without_nvidia_smi_keeps_the_cpus_name(monkeypatch):
    monkeypatch.setattr(common, "gpu_name", lambda: None)
    assert common.result_folder("train", "m", on_gpu=True) == common.result_folder("train", "m")
