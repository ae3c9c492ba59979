"""A bundle folder written whole or not at all: built in a hidden work folder beside the output,
then renamed into place (``compile`` and ``compile --from``). Imports nothing of the build side."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edgeseg.engines.bundle import MANIFEST
from edgeseg.errors import BundleError


def start(output: Path) -> Path:
    """The empty work folder for a bundle bound for ``output`` (refused where ``output`` exists and
    is not a bundle); the work folders of killed builds into the same output are removed first."""
    if output.exists() and not (output / MANIFEST).is_file():
        raise BundleError("exists and is not a bundle", output, "choose another -o, or remove it first")
    output.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(output)
    work = output.with_name(f".{output.name}.partial-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    return work


def _remove_leftovers(output: Path) -> None:
    """The hidden work folders (``.NAME.partial-PID``, ``.NAME.old-PID``) of builds into this
    output that were killed: removed where their process is gone, kept where it still runs."""
    for path in output.parent.glob(f".{output.name}.*-*"):
        kind, _, pid = path.name[len(output.name) + 2:].rpartition("-")
        if kind in ("partial", "old") and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def finish(work: Path, output: Path) -> None:
    """Rename the finished bundle into place; an older bundle there is swapped out, then removed."""
    if not output.exists():
        os.replace(work, output)
        return
    old = output.with_name(f".{output.name}.old-{os.getpid()}")
    os.replace(output, old)
    os.replace(work, output)
    shutil.rmtree(old, ignore_errors=True)
