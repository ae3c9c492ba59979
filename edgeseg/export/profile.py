"""Compile profiles: a target's recipe (backend, precision, calibration, engine options) kept in a
YAML file that ``edgeseg compile --profile FILE`` takes; flags given on the command line win."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from edgeseg.settings import config_error, read_yaml_mapping


class CompileProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    description: str = ""
    backend: str | None = None
    precision: str | None = None
    calib_frames: int | None = None
    val_frames: int | None = None
    accuracy_control: bool | None = None
    options: dict[str, Any] = {}  # the backend's engine options (hint, streams, threads, workspace_mb, ...)


def read_profile(path: str | Path) -> CompileProfile:
    try:
        return CompileProfile.model_validate(read_yaml_mapping(path, "compile profile"))
    except ValidationError as e:
        raise config_error(e, path, "see export/profiles/ for examples") from None
