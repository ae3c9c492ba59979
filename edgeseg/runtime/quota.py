"""A disk quota for a run's archives (masks, overlays, video segments): past it, the oldest
files go first, so a station that runs for months keeps its newest pictures and never fills the
disk with them."""

from __future__ import annotations

import collections
import logging
import threading
from pathlib import Path

log = logging.getLogger(__name__)


class ArchiveQuota:
    def __init__(self, folders: list[Path], max_bytes: int):
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        files = sorted((p for folder in folders if folder.is_dir() for p in folder.rglob("*") if p.is_file()),
                       key=lambda p: p.stat().st_mtime)
        self._files = collections.deque((p, p.stat().st_size) for p in files)  # oldest first
        self.total = sum(size for _, size in self._files)
        self.removed = 0
        self._trim()

    def added(self, path: Path) -> None:
        """A file was just written into an archive: count it, and make room if it is needed."""
        try:
            size = path.stat().st_size
        except OSError:
            return
        with self._lock:
            self._files.append((path, size))
            self.total += size
            self._trim()

    def _trim(self) -> None:
        """Remove the oldest files until the archive is under 90 % of its quota (not at every file)."""
        if self.total <= self.max_bytes:
            return
        while self._files and self.total > 0.9 * self.max_bytes:
            path, size = self._files.popleft()
            path.unlink(missing_ok=True)
            self.total -= size
            self.removed += 1
        if self.removed <= 5 or self.removed % 1000 < 10:
            log.info("archive quota: %d old file(s) removed so far to stay under %.0f MB", self.removed,
                     self.max_bytes / 2**20)
