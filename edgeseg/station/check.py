"""``edgeseg serve --check``: load every bundle and open every source once, and say what each
camera would run, before a station is started for real."""

from __future__ import annotations

import os

from edgeseg.engines import Bundle, open_engine
from edgeseg.errors import EdgesegError, first_line
from edgeseg.runtime.plugin_sink import PluginSinkConfig, check_plugin
from edgeseg.runtime.rules import InspectionRules
from edgeseg.runtime.sources import BadFrame, FrameLost, open_source
from edgeseg.station.config import CameraConfig, StationConfig


def check_station(config: StationConfig) -> tuple[bool, list[str]]:
    """(every check passed, one line per check)."""
    lines, ok = [f"station {config.station}: {len(config.cameras)} camera(s), results in {config.results}"], True
    for camera in config.cameras:
        for check in (_bundle, _source):
            passed, line = check(camera)
            ok &= passed
            lines.append(f"  {'ok  ' if passed else 'FAIL'} camera {camera.name}: {line}")
    for plugin in config.sinks:
        problem = _plugin(plugin)
        ok &= problem is None
        lines.append(f"  {'ok  ' if problem is None else 'FAIL'} {problem or plugin.label + ' imports'}")
    writable = _writable(config)
    ok &= writable is None
    lines.append(f"  {'ok  ' if writable is None else 'FAIL'} results: {writable or 'writable'}")
    return ok, lines


def load_camera(camera: CameraConfig) -> tuple[Bundle, InspectionRules]:
    """A camera's bundle, verified here (checksums, fingerprint, an engine opened and closed), and
    its rules; an EdgesegError saying what does not load."""
    bundle = Bundle.read(camera.bundle)
    with open_engine(bundle, remote=camera.engine):
        pass
    names = [c["name"] for c in bundle.manifest["classes"]]
    return bundle, InspectionRules.from_yaml(camera.rules, names) if camera.rules else InspectionRules()


def _plugin(plugin: PluginSinkConfig) -> str | None:
    try:
        check_plugin(plugin)
    except EdgesegError as e:
        return str(e)
    return None


def _bundle(camera: CameraConfig) -> tuple[bool, str]:
    try:
        bundle, rules = load_camera(camera)
    except EdgesegError as e:
        return False, f"bundle: {e}"
    return True, (f"bundle {bundle.path.name} ({bundle.backend} {bundle.precision}) loads; "
                  f"{len(rules.rules)} rule(s)")


def _source(camera: CameraConfig) -> tuple[bool, str]:
    try:
        source = open_source(camera.source)
    except EdgesegError as e:
        return False, f"source: {e}"
    try:
        source.open()
        frame = source.read(None)
    except (EdgesegError, FrameLost, BadFrame) as e:
        return False, f"source {source.name}: {first_line(e)}"
    finally:
        source.close()
    if frame is None:
        return False, f"source {source.name}: gave no frame"
    kind = "mono" if frame.ndim == 2 else "colour"
    return True, f"source {source.name} gives {frame.shape[1]}x{frame.shape[0]} {kind} frames"


def _writable(config: StationConfig) -> str | None:
    try:
        config.results.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return f"cannot create {config.results} ({e.strerror})"
    return None if os.access(config.results, os.W_OK) else f"{config.results} is not writable"
