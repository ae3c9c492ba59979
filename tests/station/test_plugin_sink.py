"""A plant's own sink as one Python file named in the station file: loaded, checked before it
runs, written to with every result, and kept from taking the camera down when it fails."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest
import yaml
from media import numbered_frames

from edgeseg.errors import ConfigError
from edgeseg.runtime.plugin_sink import PluginSinkConfig, check_plugin, load_sink_class
from edgeseg.station.check import check_station
from edgeseg.station.config import read_station

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_SINK = ROOT / "deploy" / "sinks" / "verdict_csv.py"

FLAKY = '''
from __future__ import annotations

from dataclasses import dataclass

import edgeseg


@dataclass
class Tally:  # a dataclass in a plugin needs its module where an import would put it
    calls: int = 0


class Flaky(edgeseg.Sink):
    """Fails every third write, as a PLC that misses a poll."""
    def __init__(self, context, log):
        self.log, self.tally = open(log, "a"), Tally()
    def write(self, result):
        self.tally.calls += 1
        if self.tally.calls % 3 == 0:
            raise ConnectionError("the PLC did not answer")
        self.log.write(f"{result.index}\\n")
        self.log.flush()
    def close(self):
        self.log.close()
'''


def _plugin(tmp_path: Path, text: str, name: str = "plant_sink.py") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "options", "says"), [
    ("import edgeseg\nclass A(edgeseg.Sink): pass\nclass B(edgeseg.Sink): pass\n", {},
     "2 Sink subclasses (A, B)"),
    ("class NotASink: pass\n", {}, "0 Sink subclasses (none)"),
    ("import edgeseg\nclass A(edgeseg.Sink):\n  def __init__(self, context, host): pass\n", {"port": 1},
     "its options do not fit A(context, ...)"),
    ("import edgeseg\nclass A(edgeseg.Sink)\n", {}, "does not import: SyntaxError"),
    ("import opcua_library_not_installed\n", {}, "does not import: ModuleNotFoundError"),
])
def test_a_plugin_that_cannot_work_is_one_error_naming_its_file(tmp_path, text, options, says):
    path = _plugin(tmp_path, text)
    with pytest.raises(ConfigError) as refused:
        check_plugin(PluginSinkConfig(plugin=str(path), options=options))
    assert str(refused.value).startswith(f"sink plugin {path}") and says in str(refused.value)


def test_a_plugin_is_a_file_or_a_module_and_its_class_may_be_named(tmp_path):
    two = _plugin(tmp_path, "import edgeseg\nclass A(edgeseg.Sink): pass\nclass B(edgeseg.Sink): pass\n")
    assert load_sink_class(PluginSinkConfig.model_validate({"plugin": str(two), "class": "B"})).__name__ == "B"
    with pytest.raises(ConfigError, match="no Sink subclass named C.*it defines A, B"):
        load_sink_class(PluginSinkConfig.model_validate({"plugin": str(two), "class": "C"}))
    with pytest.raises(ConfigError, match="file not found"):
        load_sink_class(PluginSinkConfig(plugin=str(tmp_path / "absent.py")))
    # an installed module: the plant's package, by name
    assert load_sink_class(PluginSinkConfig.model_validate(
        {"plugin": "edgeseg.runtime.webhook_sink", "class": "WebhookSink"})).__name__ == "WebhookSink"


def _station_file(tmp_path: Path, bundle: Path, sinks: list[dict], cameras=("top", "side")) -> Path:
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump({
        "station": "line-3", "results": "results", "metrics": None, "sinks": sinks,
        "cameras": [{"name": name, "source": "memory", "bundle": str(bundle)} for name in cameras]}))
    return path


def test_the_example_csv_sink_gets_every_result_of_the_cameras_it_names(bundle_factory, tmp_path):
    from edgeseg.runtime.sources.memory import MemorySource
    from edgeseg.station.service import Station

    (tmp_path / "sinks").mkdir()
    (tmp_path / "sinks" / "verdict_csv.py").write_text(EXAMPLE_SINK.read_text())
    bundle = bundle_factory("onnxruntime", "fp32").path
    path = _station_file(tmp_path, bundle, [{"plugin": "sinks/verdict_csv.py", "cameras": ["top"],
                                             "options": {"path": "verdicts.csv"}}])
    config = read_station(path)
    assert config.sinks[0].plugin == str(tmp_path / "sinks" / "verdict_csv.py")  # relative to the station file
    frames = numbered_frames(5, 96, 128)
    station = Station(config, sources={name: (lambda: MemorySource(frames, 12)) for name in ("top", "side")})
    station.run()
    results = [json.loads(line) for line in (tmp_path / "results/top/results.jsonl").read_text().splitlines()]
    with (tmp_path / "results/top/verdicts.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["frame"]) for row in rows] == [line["index"] for line in results] == list(range(12))
    assert [row["verdict"] for row in rows] == [line["verdict"] for line in results]
    assert {(row["station"], row["camera"]) for row in rows} == {("line-3", "top")}
    assert not (tmp_path / "results/side/verdicts.csv").exists()  # only the cameras it names


def test_a_plugin_that_fails_some_writes_is_logged_and_the_camera_goes_on(bundle_factory, tmp_path, caplog):
    from edgeseg.runtime.sources.memory import MemorySource
    from edgeseg.station.service import Station

    plugin = _plugin(tmp_path, FLAKY)
    bundle = bundle_factory("onnxruntime", "fp32").path
    written = tmp_path / "plc.log"
    config = read_station(_station_file(tmp_path, bundle, [{"plugin": str(plugin), "options": {"log": str(written)}}],
                                        cameras=("top",)))
    station = Station(config, sources={"top": lambda: MemorySource(numbered_frames(3, 96, 128), 9)})
    with caplog.at_level(logging.ERROR):
        station.run()
    assert written.read_text().split() == ["0", "1", "3", "4", "6", "7"]  # every write but the failed ones
    assert len((tmp_path / "results/top/results.jsonl").read_text().splitlines()) == 9  # the camera went on
    assert station.pipelines[0].restarts == 0
    assert (f"sink plugin {plugin}, frame 8: not written (ConnectionError: the PLC did not answer); "
            "3 write(s) lost so far") in caplog.text


def test_serve_check_imports_every_plugin_and_a_station_naming_an_unknown_camera_is_refused(
        bundle_factory, tmp_path):
    bundle = bundle_factory("onnxruntime", "fp32").path
    good = _station_file(tmp_path, bundle, [{"plugin": str(EXAMPLE_SINK), "options": {"only_failed": True}}])
    ok, lines = check_station(read_station(good))
    assert f"  ok   sink plugin {EXAMPLE_SINK} imports" in lines
    bad = _station_file(tmp_path, bundle, [{"plugin": str(EXAMPLE_SINK), "options": {"only_faild": True}}])
    ok, lines = check_station(read_station(bad))
    refusal = f"  FAIL sink plugin {EXAMPLE_SINK}: its options do not fit"
    assert not ok and any(line.startswith(refusal) for line in lines)
    with pytest.raises(ConfigError, match="sinks: .*names no such camera: front"):
        read_station(_station_file(tmp_path, bundle, [{"plugin": str(EXAMPLE_SINK), "cameras": ["front"]}]))
