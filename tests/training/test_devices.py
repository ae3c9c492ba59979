"""Where training runs: the device setting is checked, a GPU asked for where there is none is a
clear error before anything is written, and (where a GPU is) a run on CUDA trains, resumes and
keeps a checkpoint that any machine loads and scores as the run did."""

from __future__ import annotations

import pytest
import torch

from edgeseg.errors import ConfigError
from edgeseg.training.config import TrainConfig
from edgeseg.training.devices import training_device, wants_cuda


def test_an_unknown_device_setting_is_refused_with_the_choices():
    with pytest.raises(ConfigError, match=r"unknown device 'gpu': choose auto, cpu, cuda or cuda:N"):
        TrainConfig(device="gpu")
    assert TrainConfig(device="cuda:1").device == "cuda:1"


def test_auto_trains_on_the_cpu_where_torch_sees_no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not wants_cuda("auto") and training_device("auto") == torch.device("cpu")
    assert training_device("cpu") == torch.device("cpu")


def test_asking_for_a_gpu_where_there_is_none_fails_before_anything_is_written(synth_data, tmp_path, monkeypatch):
    from edgeseg.training.trainer import train

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = TrainConfig(data=str(synth_data), out=str(tmp_path / "run"), input_size=64, epochs=1, device="cuda")
    with pytest.raises(ConfigError, match="this PyTorch sees no CUDA GPU"):
        train(cfg, show_progress=False)
    assert not (tmp_path / "run").exists()


def test_each_torchrun_rank_takes_its_own_gpu_and_a_fixed_one_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert training_device("cuda", local_rank=1, distributed=True) == torch.device("cuda", 1)
    assert training_device("auto", local_rank=0) == torch.device("cuda", 0)
    with pytest.raises(ConfigError, match="each rank takes the GPU of its LOCAL_RANK"):
        training_device("cuda:1", local_rank=0, distributed=True)
    with pytest.raises(ConfigError, match="this machine has 2 CUDA GPU"):
        training_device("cuda:2")


@pytest.mark.gpu
def test_a_run_on_cuda_trains_resumes_and_keeps_a_checkpoint_any_machine_scores_alike(synth_data, tmp_path):
    from edgeseg.data import DatasetLayout
    from edgeseg.metrics import mean_iou
    from edgeseg.training.checkpoint import load_checkpoint, model_from_checkpoint
    from edgeseg.training.dataset import load_split
    from edgeseg.training.evaluation import evaluate
    from edgeseg.training.trainer import train

    cfg = TrainConfig(data=str(synth_data), out=str(tmp_path / "run"), input_size=64, arch_kwargs={"base": 8},
                      epochs=6, batch_size=8, lr=5e-3, seed=0, device="cuda")  # as the CPU learns them in
    first = train(cfg, show_progress=False)
    assert first.history[-1]["train_loss"] < first.history[0]["train_loss"]
    assert first.best_metrics["miou"] > first.history[0]["val"]["miou"]
    cfg.epochs = 7
    resumed = train(cfg, resume=True, show_progress=False)
    assert [h["epoch"] for h in resumed.history] == list(range(1, 8)) and resumed.history[:6] == first.history
    state = load_checkpoint(resumed.best_checkpoint)
    assert all(t.device.type == "cpu" for t in state["model"].values())
    assert "class_offsets" in state["meta"] and "metrics_frame_size" in state["meta"]
    layout = DatasetLayout.open(synth_data)
    images, masks, _ = load_split(layout, "val", 1, 64, train=False)
    norm = state["meta"]["normalization"]
    on_cpu = evaluate(model_from_checkpoint(state), images, masks, norm["mean"], norm["std"],
                      layout.classes.num_classes)
    recorded = state["meta"]["metrics"]["miou"]  # scored on the GPU, under bf16 where the GPU has it
    assert abs(mean_iou(on_cpu) - recorded) < 0.03
