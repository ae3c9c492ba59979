"""The station file: one YAML that names the station, its cameras (source, bundle, rules, mode,
frame-rate cap, what to archive) and where results go. Checked by a schema: an unknown key, a
wrong type or a missing value is one line naming the file and the key path."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from edgeseg.errors import ConfigError
from edgeseg.runtime.mqtt_sink import MqttConfig
from edgeseg.runtime.plugin_sink import PluginSinkConfig
from edgeseg.runtime.webhook_sink import WebhookConfig
from edgeseg.settings import config_error, read_yaml_mapping

EXAMPLE = "deploy/station.example.yaml"


class CameraConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="names its results folder and its result lines")
    source: str = Field(description="a URI as edgeseg run takes it (rtsp://, usb:0, pylon://, a folder, a file)")
    bundle: Path = Field(description="the bundle folder (relative paths are from the station file)")
    rules: Path | None = None
    mode: Literal["resize", "tile"] = "resize"
    max_fps: float | None = Field(default=None, gt=0, description="a cap on the frames inspected per second")
    masks: bool = False
    overlays: Literal["none", "failed", "all"] = "none"
    video: bool = False
    give_up_after: float | None = Field(default=None, gt=0, description="seconds a live source may stay gone")
    engine: str | None = Field(default=None, pattern=r"^kserve(\+http|\+grpc)?://",
                               description="kserve://HOST:PORT/MODEL: inference on a serving engine (the bundle "
                                           "says what the model takes and gives)")

    @field_validator("bundle", "rules", mode="before")
    @classmethod
    def _path(cls, value: object) -> object:
        return Path(value) if isinstance(value, str) else value


class StationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    station: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    results: Path = Field(description="results go to RESULTS/<camera>/")
    cameras: list[CameraConfig] = Field(min_length=1)
    archive_quota_mb: float | None = Field(default=2048.0, gt=0,
                                           description="each camera's masks, overlays and video; the oldest go first")
    results_rotate_mb: float | None = Field(default=100.0, gt=0, description="results.jsonl rotated past this size")
    results_rotate_hours: float | None = Field(default=24.0, gt=0, description="... or this age")
    mqtt: MqttConfig | None = None  # every camera's results also to this broker
    webhook: WebhookConfig | None = None  # failed parts (or every frame) POSTed here
    sinks: list[PluginSinkConfig] = Field(default_factory=list, description="the plant's own sinks, one file each")
    # /metrics, /healthz and /readyz at HOST:PORT (loopback by default; null: none)
    metrics: str | None = Field(default="127.0.0.1:9108", pattern=r"^[^:\s]+:\d{1,5}$")
    # a pipeline that inspects nothing this long while its camera gives frames is replaced (0: never)
    watchdog_seconds: float = Field(default=60.0, ge=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"  # json: one object a line, for journald and log shippers

    @field_validator("results", mode="before")
    @classmethod
    def _path(cls, value: object) -> object:
        return Path(value) if isinstance(value, str) else value

    @field_validator("cameras")
    @classmethod
    def _names_differ(cls, cameras: list[CameraConfig]) -> list[CameraConfig]:
        names = [camera.name for camera in cameras]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"camera names must differ: {', '.join(twice)} more than once")
        return cameras

    @field_validator("sinks")
    @classmethod
    def _sinks_name_cameras(cls, sinks: list[PluginSinkConfig], info: ValidationInfo) -> list[PluginSinkConfig]:
        names = {camera.name for camera in info.data.get("cameras", [])}  # cameras come first in the model
        for sink in sinks:
            unknown = sorted(set(sink.cameras or ()) - names)
            if unknown and names:
                raise ValueError(f"{sink.label} names no such camera: {', '.join(unknown)}")
        return sinks

    def plugins_of(self, camera: str) -> tuple[PluginSinkConfig, ...]:
        return tuple(sink for sink in self.sinks if sink.cameras is None or camera in sink.cameras)


def read_station(path: str | Path) -> StationConfig:
    """The station file, checked, with its relative paths made relative to the file's folder."""
    path = Path(path)
    try:
        station = StationConfig.model_validate(read_yaml_mapping(path, "station file"))
    except ValidationError as e:
        raise config_error(e, path, f"see {EXAMPLE} for a station file that works") from None
    return _anchored(station, path.resolve().parent)


def _anchored(station: StationConfig, folder: Path) -> StationConfig:
    def anchor(value: Path | None) -> Path | None:
        return value if value is None or value.is_absolute() else folder / value

    cameras = [camera.model_copy(update={"bundle": anchor(camera.bundle), "rules": anchor(camera.rules)})
               for camera in station.cameras]
    sinks = [sink.model_copy(update={"plugin": str(anchor(Path(sink.plugin)))}) if sink.plugin.endswith(".py")
             else sink for sink in station.sinks]
    return station.model_copy(update={"results": anchor(station.results), "cameras": cameras, "sinks": sinks})


def missing_files(station: StationConfig) -> list[str]:
    """Bundles and rules files the station names that are not there."""
    missing = []
    for camera in station.cameras:
        if not camera.bundle.is_dir():
            missing.append(f"camera {camera.name}: bundle {camera.bundle} not found")
        if camera.rules is not None and not camera.rules.is_file():
            missing.append(f"camera {camera.name}: rules {camera.rules} not found")
    return missing


__all__ = ["CameraConfig", "ConfigError", "StationConfig", "missing_files", "read_station"]
