"""An output folder that one run writes at a time: a second process on the same folder is
refused, and each run's report is kept beside the others, never overwritten."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path

from edgeseg.errors import ConfigError

log = logging.getLogger(__name__)

LOCK_FILE = ".edgeseg.lock"


def stamp(seconds: float) -> str:
    """A time as runs are named in every result line and in rotated file names (ISO 8601, UTC,
    to the millisecond), so that names sort as the times do."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(seconds)) + f".{int(seconds * 1000) % 1000:03d}Z"


def stamp_seconds(text: str) -> float:
    """The time a ``stamp`` names (ValueError if it is not one)."""
    return datetime.strptime(text, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def run_id() -> str:
    """When a run starts, as it names the run in every result line."""
    return stamp(time.time())


class OutputFolder:
    """``--out DIR`` held for one run: created, locked (flock, released by the kernel if the
    process dies), and given the run's report."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.path / LOCK_FILE, "a+")
        except OSError as e:
            raise ConfigError(f"cannot write here ({e.strerror})", self.path, "give another --out") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "another process"
            self._lock.close()
            raise ConfigError(f"another edgeseg run ({holder}) writes into this folder", self.path,
                              "stop it, or give another --out") from None
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(f"pid {os.getpid()}\n")
        self._lock.flush()

    def write_report(self, report: dict) -> None:
        """``timing.json`` (the latest run, replaced whole) and a line in ``runs.jsonl`` (every run);
        where the disk cannot take them, the old ones stay whole and the failure is logged."""
        partial = self.path / ".timing.json.partial"
        try:
            partial.write_text(json.dumps(report, indent=2) + "\n")
            os.replace(partial, self.path / "timing.json")
            with open(self.path / "runs.jsonl", "a") as runs:
                runs.write(json.dumps(report) + "\n")
        except OSError as e:
            partial.unlink(missing_ok=True)
            log.error("%s: the run's report was not written (%s)", self.path / "timing.json", e.strerror or e)

    def close(self) -> None:
        if not self._lock.closed:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
