"""A plant's own sink (an OPC UA server, a PLC's digital output, a database) as one Python file
named in a station file: its ``Sink`` subclass is made once per camera session with a
``SinkContext`` and the options the station file gives, and a write that raises is logged and
counted without stopping the camera."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from edgeseg.errors import ConfigError
from edgeseg.runtime.sinks import FrameResult, JsonLinesSink, Sink

log = logging.getLogger(__name__)


class PluginSinkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True, frozen=True)

    plugin: str = Field(description="a .py file (relative to the station file) or an importable module name")
    class_name: str | None = Field(default=None, alias="class",
                                   description="the Sink subclass to use; default: the file's only one")
    options: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of its constructor")
    cameras: list[str] | None = Field(default=None, description="the cameras it serves; default: every one")

    @property
    def label(self) -> str:
        return f"sink plugin {self.plugin}" + (f" ({self.class_name})" if self.class_name else "")


@dataclass(frozen=True)
class SinkContext:
    """What a plugin sink is told of where it runs."""

    station: str | None
    camera: str | None
    out: Path | None  # the camera's results folder (for a queue or a log of its own)
    header: dict  # run, station, camera, source and bundle, as every result line starts
    to_json: Callable[[FrameResult], bytes]  # a result as its results.jsonl line (no newline)


def load_sink_class(config: PluginSinkConfig) -> type[Sink]:
    """The plugin's Sink subclass; a ConfigError naming the file and what is wrong."""
    module = _import(config)
    found = {name: value for name, value in vars(module).items()
             if inspect.isclass(value) and issubclass(value, Sink) and value.__module__ == module.__name__}
    if config.class_name is not None:
        if config.class_name not in found:
            raise ConfigError(f"{config.label}: no Sink subclass named {config.class_name}",
                              fix=f"it defines {', '.join(sorted(found)) or 'none'}")
        return found[config.class_name]
    if len(found) != 1:
        raise ConfigError(f"{config.label}: {len(found)} Sink subclasses ({', '.join(sorted(found)) or 'none'})",
                          fix="define one class that subclasses edgeseg.Sink, or name it with class:")
    return next(iter(found.values()))


def _import(config: PluginSinkConfig) -> ModuleType:
    try:
        if not config.plugin.endswith(".py"):
            return importlib.import_module(config.plugin)
        path = Path(config.plugin)
        if not path.is_file():
            raise ConfigError(f"{config.label}: file not found", fix="give its path from the station file's folder")
        # a name of its own per file, so two plants' sink.py files do not replace each other
        name = "edgeseg_plugin_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"{config.label}: not a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # as an import would: dataclasses and pickling look it up there
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
    except ConfigError:
        raise
    except Exception as e:  # a syntax error, a missing import: the plant's code, reported as such
        raise ConfigError(f"{config.label} does not import: {type(e).__name__}: {e}") from None


def check_plugin(config: PluginSinkConfig) -> type[Sink]:
    """Import the plugin and check its constructor takes the options given, without making one
    (which may connect to the plant); used by ``serve --check`` and before a reload."""
    cls = load_sink_class(config)
    try:
        inspect.signature(cls).bind(None, **config.options)
    except TypeError as e:
        raise ConfigError(f"{config.label}: its options do not fit {cls.__name__}(context, ...): {e}",
                          fix="give the options its constructor takes") from None
    return cls


def make_plugin_sink(config: PluginSinkConfig, context: SinkContext) -> Sink:
    cls = check_plugin(config)
    factory: Callable[..., Sink] = cls  # a plugin's constructor takes the context and its options
    try:
        sink = factory(context, **config.options)
    except Exception as e:
        raise ConfigError(f"{config.label}: {cls.__name__}() failed: {type(e).__name__}: {e}") from None
    return GuardedSink(sink, config.label)


def plugin_context(header: dict, out: Path | None) -> SinkContext:
    return SinkContext(header.get("station"), header.get("camera"), out, header, JsonLinesSink.formatter(header))


class GuardedSink(Sink):
    """A plugin sink whose failures are the plant's, not the line's: a write or close that raises
    is logged (the first few, then every hundredth) and counted as a lost write."""

    def __init__(self, inner: Sink, label: str):
        self.inner, self.label = inner, label

    def write(self, result: FrameResult) -> None:
        try:
            self.inner.write(result)
        except Exception as e:
            self._lost(f"{self.label}, frame {result.index}", f"{type(e).__name__}: {e}")

    def close(self) -> None:
        try:
            self.inner.close()
        except Exception as e:
            log.error("%s: close failed (%s: %s)", self.label, type(e).__name__, e)
