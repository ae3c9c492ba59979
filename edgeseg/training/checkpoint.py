"""Checkpoints: a plain dict of tensors and primitives, loaded with ``weights_only=True`` so no
file can run code when it is opened."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from edgeseg.errors import CheckpointError, first_line
from edgeseg.settings import config_error

CHECKPOINT_FORMAT = "edgeseg-checkpoint"
CHECKPOINT_VERSION = 1


class _InputSpec(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    height: int
    width: int
    channels: int


class _Normalization(BaseModel):
    model_config = ConfigDict(strict=True)

    mean: list[float]
    std: list[float]


class _CheckpointMeta(BaseModel):
    """What export and the benchmarks read from a checkpoint's metadata; the rest passes through."""

    model_config = ConfigDict(extra="allow", strict=True)

    arch: str
    input: _InputSpec
    classes: list[dict]
    normalization: _Normalization


def weights_on_cpu(state_dict: dict) -> dict:
    """A model's weights as any machine loads them (a GPU run's too)."""
    return {name: tensor.cpu() for name, tensor in state_dict.items()}


def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically so a crash mid-write never leaves a truncated best.pt behind."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("checkpoint not found", path, "give the best.pt or last.pt that edgeseg train wrote")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" not in str(e):
            raise CheckpointError(f"not a readable checkpoint ({first_line(e)})", path, "train again") from None
        if "Unsupported global" not in str(e):  # an opcode it cannot read: bytes, not a refused object
            raise CheckpointError("not a readable checkpoint (its bytes are not a PyTorch checkpoint's)", path,
                                  "the file is damaged or of another format; train again or copy it again") from None
        raise CheckpointError("refused: it holds objects that would run code when loaded", path,
                              "edgeseg reads only plain tensors and values; use a checkpoint written by edgeseg train"
                              ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as e:
        reason = first_line(e)
        raise CheckpointError(f"not a readable checkpoint ({reason})", path,
                              "the file is truncated or not a PyTorch checkpoint; train again or copy it again"
                              ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError("not an edgeseg checkpoint", path,
                              "export needs a checkpoint written by edgeseg train")
    if state.get("version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint version {state.get('version')} is newer than this edgeseg reads "
                              f"({CHECKPOINT_VERSION})", path, "upgrade edgeseg")
    for key in ("meta", "model"):
        if key not in state:
            raise CheckpointError(f"checkpoint has no '{key}' entry", path, "train again")
    try:
        _CheckpointMeta.model_validate(state["meta"])
    except ValidationError as e:
        raise CheckpointError(f"its metadata is incomplete: meta.{config_error(e).what}", path,
                              "export needs a checkpoint written by edgeseg train; train again") from None
    return state


def model_from_checkpoint(state: dict) -> torch.nn.Module:
    """The trained model in eval mode, built from the architecture named in the checkpoint."""
    from edgeseg.models import build_model

    meta = state["meta"]
    model = build_model(meta["arch"], meta["input"]["channels"], len(meta["classes"]),
                        dropout=meta.get("dropout", 0.0), **meta.get("arch_kwargs", {}))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise CheckpointError(f"weights do not fit architecture '{meta['arch']}' "
                              f"({first_line(e)})") from None
    return model.eval()
