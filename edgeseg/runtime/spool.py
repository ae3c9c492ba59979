"""A queue on disk for messages that must survive a broker that is away and a process that
restarts: lines appended to ``queue.jsonl``, the byte offset of the last one delivered kept in
``delivered``. Bounded: past ``max_bytes`` waiting, new messages are dropped and counted."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

COMPACT_AT = 1 << 20  # an all-delivered queue file larger than this starts again from empty


def append_whole(file, data: bytes) -> OSError | None:
    """Append ``data`` to an unbuffered binary file whole or not at all: a write the disk cannot
    take, or takes only in part, is cut back off the file. Returns the error, if there was one."""
    start = os.fstat(file.fileno()).st_size
    try:
        if file.write(data) != len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a short write: the disk filled up mid-line
    except OSError as e:
        os.ftruncate(file.fileno(), start)
        file.seek(start)
        return e
    return None


class DiskQueue:
    def __init__(self, folder: Path, max_bytes: int):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.max_bytes = folder, max_bytes
        self._lock = threading.Lock()
        self._file = open(folder / "queue.jsonl", "ab+", buffering=0)
        self.delivered = self._read_offset()
        self.read_at = self.delivered  # where the next message to send starts
        self.dropped = 0

    def _read_offset(self) -> int:
        try:
            offset = int((self.folder / "delivered").read_text())
        except (OSError, ValueError):
            return 0
        return min(offset, self._size())

    def _size(self) -> int:
        return os.fstat(self._file.fileno()).st_size

    def put(self, message: bytes) -> bool:
        """Append one message (one line); False when the queue is full or the disk cannot take it."""
        with self._lock:
            if self._size() - self.delivered + len(message) > self.max_bytes:
                self.dropped += 1
                return False
            if append_whole(self._file, message + b"\n") is not None:
                self.dropped += 1
                return False
            return True

    def take(self, limit: int) -> list[tuple[bytes, int]]:
        """Up to ``limit`` messages not yet handed out, each with the offset just past it."""
        with self._lock:
            taken: list[tuple[bytes, int]] = []
            chunk = 1 << 18
            while len(taken) < limit:
                data = os.pread(self._file.fileno(), chunk, self.read_at)
                lines = data.split(b"\n")[:-1]  # the piece after the last newline is not whole yet
                if not lines:
                    if len(data) == chunk:  # one message longer than the chunk: read more at once
                        chunk *= 2
                        continue
                    break
                for line in lines[:limit - len(taken)]:
                    self.read_at += len(line) + 1
                    taken.append((line, self.read_at))
            return taken

    def mark_delivered(self, offset: int) -> None:
        """Everything before ``offset`` has been delivered: kept on disk, and the file starts
        afresh when all of it was delivered and it has grown large."""
        with self._lock:
            self.delivered = max(self.delivered, offset)
            if self.delivered == self.read_at == self._size() and self.delivered > COMPACT_AT:
                os.ftruncate(self._file.fileno(), 0)
                self.delivered = self.read_at = 0
            partial = self.folder / "delivered.partial"
            partial.write_text(str(self.delivered))
            os.replace(partial, self.folder / "delivered")

    def rewind(self) -> None:
        """Hand out again, from the first message not yet delivered."""
        with self._lock:
            self.read_at = self.delivered

    @property
    def waiting(self) -> int:
        with self._lock:
            return self._size() - self.delivered

    def close(self) -> None:
        self._file.close()
