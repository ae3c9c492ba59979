"""Typed, actionable errors: what was wrong, with which file, and what to do.

The CLI prints an ``EdgesegError`` as one line and exits non-zero; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SECRET_KEYS = re.compile(r"pass|pwd|token|secret|key|auth|sig", re.IGNORECASE)


def redact(uri: str) -> str:
    """A URI fit to print or store: a user and password in it become ``***``, and so do the
    values of query keys that look like credentials (password, token, key, ...)."""
    if "://" not in uri:
        return uri
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri.split("://", 1)[0] + "://***"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if _SECRET_KEYS.search(k) else v) for k, v in pairs], safe="*/:")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class EdgesegError(Exception):
    """A user-facing error. ``str()`` is the one line the CLI prints."""

    def __init__(self, what: str, path: str | Path | None = None, fix: str | None = None):
        self.what = what
        self.fix = fix
        # a file keeps its path; an address (rtsp://...) is shown as written, credentials redacted
        self.uri = redact(str(path)) if path is not None and "://" in str(path) else None
        self.path = Path(path) if path is not None and self.uri is None else None
        where = self.uri or self.path
        parts = [f"{where}: {what}" if where is not None else what]
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
