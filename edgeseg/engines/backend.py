"""What every backend module offers (``edgeseg/engines/*_engine.py``), written once.

A new backend is one module that satisfies ``Backend`` and one line in ``BACKENDS``
(``edgeseg/engines/__init__.py``); mypy checks the modules against it, and a test checks them at
run time too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from edgeseg.engines.base import Engine, IOSpec
from edgeseg.engines.bundle import Bundle


class Backend(Protocol):
    NAME: str
    PRECISIONS: tuple[str, ...]
    DEFAULT_OPTIONS: dict[str, Any]  # every option the backend takes, with its default

    def version(self) -> str:
        """The backend library's version (raises EngineError where it is not installed)."""
        ...

    def fingerprint(self, engine_info: dict) -> dict:
        """What a built engine depends on here; a bundle built elsewhere must match it."""
        ...

    def build(self, graph: Path, out: Path, precision: str, options: dict,
              input_spec: dict | None = None) -> dict:
        """Build the engine files for ``graph`` into ``out``; returns the manifest's engine entry."""
        ...

    def load(self, bundle: Bundle, spec: IOSpec, requests: int = 1, **overrides: Any) -> Engine:
        """An Engine over a checked bundle, its buffers bound once."""
        ...
