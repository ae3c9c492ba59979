"""The compiled-model cache OpenVINO writes on first load, kept outside the bundle and checked
before it is used: what runs must be what the bundle's gate verified.

The cache of a bundle lives in ``$EDGESEG_CACHE_DIR`` (else ``$XDG_CACHE_HOME/edgeseg``, else
``~/.cache/edgeseg``) under a key made of the bundle's checksum and everything the compiled
model depends on (backend version, device, settings), so no other model's cache can be found
there. Once written, its files' sha256 are recorded beside them with the key; a file that no
longer matches, a file not recorded, or a record made for another key gets the whole cache
removed, logged, and compiled again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

from edgeseg.engines.bundle import sha256_file

log = logging.getLogger(__name__)

RECORD = "edgeseg-cache.json"


def cache_root() -> Path:
    if os.environ.get("EDGESEG_CACHE_DIR"):
        return Path(os.environ["EDGESEG_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgeseg"


def cache_key(bundle_sha256: str, depends_on: dict) -> str:
    text = json.dumps({"bundle": bundle_sha256, **depends_on}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def checked_cache(backend: str, key: str) -> Path | None:
    """The cache folder for ``key``, its contents verified (or removed when they fail); None
    where no cache can be written here (the model then compiles on every load)."""
    folder = cache_root() / backend / key
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    problem = _problem(folder, key)
    if problem is not None:
        log.warning("%s: %s; removed, the model is compiled again", folder, problem)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def _problem(folder: Path, key: str) -> str | None:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != RECORD)
    record_path = folder / RECORD
    if not record_path.is_file():
        return "cache files without a record of their checksums" if files else None
    try:
        record = json.loads(record_path.read_text())
        recorded = dict(record["files"])
        if record["key"] != key:
            return "a cache made for another bundle or setting"
    except (OSError, ValueError, KeyError, TypeError):
        return "an unreadable cache record"
    if sorted(recorded) != [p.name for p in files]:
        return "cache files that are not the ones recorded"
    for path in files:
        if sha256_file(path) != recorded[path.name]:
            return f"{path.name} changed after it was written (checksum mismatch)"
    return None


def record(folder: Path | None, key: str) -> None:
    """Record the checksums of what the backend just wrote into ``folder`` (once: a cache that
    has its record is left as it is)."""
    if folder is None or (folder / RECORD).is_file():
        return
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != RECORD}
    if not files:
        return
    partial = folder / (RECORD + ".partial")
    partial.write_text(json.dumps({"key": key, "files": files}, indent=1))
    os.replace(partial, folder / RECORD)
