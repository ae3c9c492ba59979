"""The bundle manifest's schema: what a reader may rely on, checked when a bundle is opened, and
the steps that bring an older schema version up to this one before it is checked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

SCHEMA = "edgeseg-bundle"
SCHEMA_VERSION = 1

# schema version N -> the step that turns a version-N manifest into version N+1. Each step only
# renames or fills in; checksums are of the files, so a migrated manifest still verifies them.
MIGRATIONS: dict[int, Callable[[dict], dict]] = {}


class ClassEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    name: str
    color: list[int]


class InputSpec(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    shape: list[Any]
    channels: int
    color_order: str
    height: int
    width: int
    resize: str
    dynamic: bool = False
    bit_depth: int = 16  # the depth of the 16-bit data it was trained on (8: 8-bit data); edgeseg/data/imageio.py


class OutputSpec(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    dtype: str


class FileEntry(BaseModel):
    sha256: str
    bytes: int


class EngineEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    files: list[str]
    options: dict[str, Any]


class Manifest(BaseModel):
    """The keys the runtime, ``info`` and ``verify`` read; a manifest may carry more."""

    model_config = ConfigDict(extra="allow")

    schema_version: int
    created: str
    backend: str
    precision: str
    classes: list[ClassEntry]
    input: InputSpec
    outputs: list[OutputSpec]
    engine: EngineEntry
    fingerprint: dict[str, Any]
    files: dict[str, FileEntry]
    source: dict[str, Any] = {}
    parity: dict[str, Any] | None = None


def upgrade_to_latest(manifest: dict) -> dict:
    """The manifest at SCHEMA_VERSION, through each migration step in turn. A newer version than
    this edgeseg reads, or an older one without a step, is a ValueError saying which."""
    version = manifest.get("schema_version")
    if not isinstance(version, int):
        raise ValueError(f"manifest has no schema version (found {version!r})")
    if version > SCHEMA_VERSION:
        raise ValueError(f"manifest schema version {version} is newer than the {SCHEMA_VERSION} this edgeseg reads")
    while version < SCHEMA_VERSION:
        if version not in MIGRATIONS:
            raise ValueError(f"manifest schema version {version} is older than any this edgeseg can upgrade")
        manifest = {**MIGRATIONS[version](manifest), "schema_version": version + 1}
        version += 1
    return manifest


def check_manifest(manifest: dict) -> str | None:
    """None if the manifest has every key a reader relies on, else one line saying what is wrong."""
    try:
        Manifest.model_validate(manifest)
    except ValidationError as e:
        from edgeseg.settings import config_error

        return config_error(e).what
    return None
