"""Typed, actionable errors: what was wrong, with which file, and what to do.

The CLI prints an ``EdgesegError`` as one line and exits non-zero; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import re
from pathlib import Path


class EdgesegError(Exception):
    """A user-facing error. ``str()`` is the one line the CLI prints."""

    def __init__(self, what: str, path: str | Path | None = None, fix: str | None = None):
        self.what = what
        self.path = Path(path) if path is not None else None
        self.fix = fix
        parts = [f"{self.path}: {what}" if self.path is not None else what]
        if fix:
            parts.append(fix)
        super().__init__(" — ".join(parts))


class DatasetError(EdgesegError):
    """A data set folder, class table, image or mask that cannot be used."""


class CheckpointError(EdgesegError):
    """A checkpoint that is missing, truncated, or not an edgeseg checkpoint."""


class ExportError(EdgesegError):
    """Export failed or the exported graph does not match the PyTorch model."""


class ConfigError(EdgesegError):
    """A command-line option or configuration value that cannot work."""


class BundleError(EdgesegError):
    """A bundle that is incomplete, edited after it was built, or built for another machine."""


class EngineError(EdgesegError):
    """A backend that is missing, cannot build or load a model, or fails at run time."""


class SourceError(EdgesegError):
    """A frame source that cannot be opened, or a live source that is gone for good."""


def first_line(error: BaseException, limit: int = 200) -> str:
    """An exception's first line for a one-line message: at most ``limit`` characters, cut at a
    word with an ellipsis; its type's name where it says nothing."""
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip().splitlines()  # no terminal colours
    if not lines:
        return type(error).__name__
    line = lines[0].strip()
    if len(line) <= limit:
        return line
    return line[:limit].rsplit(" ", 1)[0].rstrip(" ,.;:") + " …"
