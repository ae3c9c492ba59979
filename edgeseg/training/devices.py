"""Where training runs (``device`` in the config): ``auto`` takes a CUDA GPU where PyTorch sees
one, else the CPU; ``cuda`` or ``cuda:N`` insist on a GPU; ``cpu`` on the CPU. Under torchrun each
rank takes the GPU of its LOCAL_RANK. Data loading, augmentation, calibration fitting and the
frame-size scoring's resizing stay on the CPU; the model, its loss and its evaluation move."""

from __future__ import annotations

import contextlib

import torch

from edgeseg.cpu import native_bf16
from edgeseg.errors import ConfigError

CPU = torch.device("cpu")


def wants_cuda(setting: str) -> bool:
    """Whether ``setting`` trains on a GPU here (``auto``: where PyTorch sees one)."""
    return setting.startswith("cuda") or (setting == "auto" and torch.cuda.is_available())


def training_device(setting: str, local_rank: int = 0, distributed: bool = False) -> torch.device:
    """The torch device this process trains on, or a clear error where the setting cannot hold."""
    if not wants_cuda(setting):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(f"device {setting}: this PyTorch sees no CUDA GPU",
                          fix="train with device: auto or cpu, or on a machine with a GPU and a CUDA build of torch")
    _, _, index = setting.partition(":")
    if index and distributed:
        raise ConfigError(f"device {setting} under torchrun: each rank takes the GPU of its LOCAL_RANK",
                          fix="set device: cuda (or auto)")
    chosen = int(index) if index else local_rank
    if chosen >= torch.cuda.device_count():
        raise ConfigError(f"device cuda:{chosen}: this machine has {torch.cuda.device_count()} CUDA GPU(s)",
                          fix="choose one of them, or run fewer processes per node")
    return torch.device("cuda", chosen)


def has_native_bf16(device: torch.device) -> bool:
    """bfloat16 at full speed: a GPU that supports it (Ampere and later), a CPU with AMX or AVX-512 BF16."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return native_bf16()


def bf16_context(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on ``device`` where ``enabled``."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def rng_states(device: torch.device) -> dict:
    """The generators a resumed run needs (dropout draws from the GPU's own on CUDA)."""
    states = {"torch_rng": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda_rng"] = torch.cuda.get_rng_state(device)
    return states


def restore_rng_states(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch_rng"])
    if device.type == "cuda" and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"], device)
