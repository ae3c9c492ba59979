"""edgeseg: semantic segmentation for inspection cameras, from labelled images to a verified
engine on the device.

The Python API (docs/api.md)::

    import edgeseg

    with edgeseg.Inspector("parts-int8", rules="rules.yaml") as inspector:
        result = inspector.inspect(frame)          # mask, confidence, regions, verdict

    with edgeseg.InspectionSession(edgeseg.RunOptions("parts-int8", "line.mp4", out="results")) as session:
        summary = session.run()                    # what `edgeseg run` does

Importing this package (the run side) never imports torch or onnx; the build side
(``edgeseg.training``, ``edgeseg.export``, ``edgeseg.models``) imports them lazily. The names
below load on first use, so ``import edgeseg`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Inspector": "edgeseg.api", "InspectionResult": "edgeseg.api",
    "InspectionSession": "edgeseg.runtime.session", "RunOptions": "edgeseg.runtime.session",
    "RunSummary": "edgeseg.runtime.loop", "Sink": "edgeseg.runtime.sinks", "FrameResult": "edgeseg.runtime.sinks",
    "SinkContext": "edgeseg.runtime.plugin_sink",
    "InspectionRules": "edgeseg.runtime.rules", "Region": "edgeseg.runtime.regions", "Verdict": "edgeseg.runtime.rules",
    "Bundle": "edgeseg.engines", "open_engine": "edgeseg.engines", "EdgesegError": "edgeseg.errors",
}
__all__ = [  # every name in _EXPORTS (a test keeps the two in step)
    "Bundle", "EdgesegError", "FrameResult", "InspectionResult", "InspectionRules", "InspectionSession", "Inspector",
    "Region", "RunOptions", "RunSummary", "Sink", "SinkContext", "Verdict", "__version__", "open_engine",
]

if TYPE_CHECKING:
    from edgeseg.api import InspectionResult, Inspector
    from edgeseg.engines import Bundle, open_engine
    from edgeseg.errors import EdgesegError
    from edgeseg.runtime.loop import RunSummary
    from edgeseg.runtime.plugin_sink import SinkContext
    from edgeseg.runtime.regions import Region
    from edgeseg.runtime.rules import InspectionRules, Verdict
    from edgeseg.runtime.session import InspectionSession, RunOptions
    from edgeseg.runtime.sinks import FrameResult, Sink


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'edgeseg' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
