"""One inspection run put together from its options: bundle, engine, source, rules, sinks, loop.
Used by ``edgeseg run`` and by the benchmarks, so both measure the same thing."""

from __future__ import annotations

import logging
import threading
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edgeseg.engines import Bundle, Engine, open_engine
from edgeseg.errors import ConfigError, SourceError
from edgeseg.runtime.capture import Capture
from edgeseg.runtime.loop import RunSummary, StatusLine, make_loop
from edgeseg.runtime.outdir import OutputFolder, run_id
from edgeseg.runtime.overlay import OverlayRenderers
from edgeseg.runtime.quota import ArchiveQuota
from edgeseg.runtime.rules import InspectionRules
from edgeseg.runtime.sinks import JsonLinesSink, MaskPngSink, OverlayImageSink, OverlayVideoSink, Sink, WindowSink
from edgeseg.runtime.sources import FrameSource, open_source
from edgeseg.runtime.tiles import TileGrid

if TYPE_CHECKING:
    from edgeseg.runtime.mqtt_sink import MqttConfig
    from edgeseg.runtime.plugin_sink import PluginSinkConfig
    from edgeseg.runtime.webhook_sink import WebhookConfig

log = logging.getLogger(__name__)

MODES = ("resize", "tile")
DEFAULT_REQUESTS = 4  # in flight in throughput mode, and at most for a frame's tiles


@dataclass
class RunOptions:
    bundle: Path | str
    source: str | FrameSource  # a URI, or a source object (a driver of one's own)
    _: KW_ONLY  # the rest by name
    out: Path | None = None  # results.jsonl and timing.json, plus what the flags below add
    rules: Path | None = None
    mode: str = "resize"
    overlap: int = 32  # tile mode
    throughput: bool = False
    requests: int | None = None
    video: bool = False  # video/<run>-NNNN.mp4, in segments
    video_segment: float = 60.0  # seconds of video per segment
    masks: bool = False  # masks/*.png
    overlays: str | None = None  # "all" or "failed": overlays/*.jpg
    window: bool = False
    alpha: float = 0.5
    max_frames: int | None = None
    give_up_after: float | None = None  # seconds a live source may stay gone
    camera: dict = field(default_factory=dict)  # width, height, fps asked of cameras
    engine_options: dict = field(default_factory=dict)
    remote_engine: str | None = None  # kserve://HOST:PORT/MODEL: inference on a serving engine
    status: bool = True
    max_fps: float | None = None  # a cap on the frames inspected per second (a live source drops the rest)
    station: str | None = None  # named in every result line (edgeseg serve)
    camera_name: str | None = None
    archive_quota_mb: float | None = None  # masks, overlays and video together; the oldest go first
    rotate_mb: float | None = None  # results.jsonl renamed and begun afresh past this size
    rotate_hours: float | None = None  # ... or this age
    mqtt: MqttConfig | None = None  # results also to an MQTT broker, queued on disk in out/mqtt-queue/
    webhook: WebhookConfig | None = None  # results POSTed to an HTTP endpoint, queued in out/webhook-queue/
    plugins: tuple[PluginSinkConfig, ...] = ()  # a plant's own sinks, each one Python file

    def __post_init__(self) -> None:  # paths may be given as text, as users of the Python API do
        self.bundle = Path(self.bundle)
        self.out = Path(self.out) if self.out is not None else None
        self.rules = Path(self.rules) if self.rules is not None else None


class InspectionSession:
    def __init__(self, opts: RunOptions, stop: threading.Event | None = None, engine: Engine | None = None):
        """``stop``, when set (from a signal handler, another thread), ends the wait for a source
        at start and the run after the frame at hand; ``session.loop.stop()`` sets it too.
        ``engine``: one opened elsewhere for this bundle (a view of a station's shared engine),
        used as it is and left open at the end; else the session opens its own."""
        self._given_engine = engine
        if opts.mode not in MODES:
            raise ConfigError(f"unknown mode '{opts.mode}'", fix=f"choose {' or '.join(MODES)}")
        if opts.mode == "tile" and opts.throughput:
            raise ConfigError("tile mode already keeps several requests busy", fix="leave out --throughput")
        if opts.overlays not in (None, "all", "failed"):
            raise ConfigError(f"--overlays takes all or failed, not {opts.overlays}")
        if (opts.video or opts.masks or opts.overlays or opts.mqtt or opts.webhook) and opts.out is None:
            raise ConfigError("--video, --masks, --overlays, MQTT and webhooks write into --out DIR",
                              fix="add --out DIR")
        self.opts = opts
        self.stopping = stop or threading.Event()
        self.run_id = run_id()
        self.bundle = Bundle.read(opts.bundle)
        manifest = self.bundle.manifest
        self.class_names = [c["name"] for c in manifest["classes"]]
        self.class_colors = [tuple(c["color"]) for c in manifest["classes"]]
        self.rules = (InspectionRules.from_yaml(opts.rules, self.class_names) if opts.rules else InspectionRules())
        self.source = (opts.source if isinstance(opts.source, FrameSource) else
                       open_source(opts.source, **opts.camera))
        self.source.bit_depth = manifest["input"].get("bit_depth", 16)  # a camera's pixel format overrides it
        # held from here to close: a second process on the same folder is refused before it writes
        self.out = OutputFolder(opts.out) if opts.out is not None else None
        ring_slots = 3 + ((opts.requests or DEFAULT_REQUESTS) if opts.throughput else 0)
        # tile mode cuts each ring slot into crop views made once, so its slots keep their own buffers
        self.capture = Capture(self.source, ring_slots, give_up_after=opts.give_up_after,
                               borrow=opts.mode != "tile", fixed_shape=opts.mode == "tile")
        self.engine: Engine | None = None
        self.sinks: list[Sink] = []
        try:
            self.capture.start(self.stopping)
            self._open(manifest)
        except BaseException:
            self.close()
            raise

    def _open(self, manifest: dict) -> None:
        opts, frame_shape = self.opts, self.capture.frame_shape
        spec = manifest["input"]
        tiles = None
        if opts.mode == "tile":
            tiles = TileGrid(frame_shape[0], frame_shape[1], spec["height"], spec["width"], opts.overlap)
        engine_options = dict(opts.engine_options)
        if opts.throughput and self.bundle.backend == "openvino" and not opts.remote_engine:
            engine_options.setdefault("hint", "throughput")
        requests = 1
        if opts.throughput:
            requests = opts.requests or DEFAULT_REQUESTS
        elif tiles is not None:
            requests = min(len(tiles), opts.requests or DEFAULT_REQUESTS)
        engine = self.engine = self._given_engine or open_engine(self.bundle, requests=requests,
                                                                       remote=opts.remote_engine, **engine_options)
        self.sinks = self._sinks(frame_shape)
        self.loop = make_loop(engine, self.capture, self.rules, self.class_names, self.sinks, tiles,
                              opts.throughput, self.source.color_order, StatusLine() if opts.status else None,
                              self.stopping)
        self.loop.min_interval = 1.0 / opts.max_fps if opts.max_fps else 0.0
        self.tiles = tiles

    def _sinks(self, frame_shape: tuple[int, ...]) -> list[Sink]:
        opts, sinks = self.opts, list[Sink]()
        renderer = OverlayRenderers(self.class_names, self.class_colors, opts.alpha,
                                    self.source.color_order) if opts.video or opts.overlays or opts.window else None
        if opts.out is not None:
            sinks.append(JsonLinesSink(opts.out / "results.jsonl", self.result_header(),
                                       int(opts.rotate_mb * 2**20) if opts.rotate_mb else None,
                                       opts.rotate_hours * 3600 if opts.rotate_hours else None))
            if opts.masks:
                sinks.append(MaskPngSink(opts.out / "masks"))
            if opts.overlays and renderer is not None:
                sinks.append(OverlayImageSink(opts.out / "overlays", renderer, opts.overlays == "failed"))
            if opts.video and renderer is not None:
                sinks.append(OverlayVideoSink(opts.out / "video", self.run_id, renderer, self.source.fps or 25.0,
                                              (frame_shape[0], frame_shape[1]), opts.video_segment))
            if opts.mqtt is not None:
                from edgeseg.runtime.mqtt_sink import MqttSink  # paho only where a run reports over MQTT

                sinks.append(MqttSink(opts.mqtt, opts.out / "mqtt-queue", self.result_header()))
            if opts.webhook is not None:
                from edgeseg.runtime.webhook_sink import WebhookSink

                sinks.append(WebhookSink(opts.webhook, opts.out / "webhook-queue", self.result_header()))
            if opts.archive_quota_mb:
                folders = [opts.out / name for name in ("masks", "overlays", "video")]
                quota = ArchiveQuota(folders, int(opts.archive_quota_mb * 2**20))
                for sink in sinks:
                    sink.quota = quota
        if opts.window and renderer is not None:
            sinks.append(WindowSink(renderer))
        return sinks + self._plugin_sinks()

    def _plugin_sinks(self) -> list[Sink]:
        if not self.opts.plugins:
            return []
        from edgeseg.runtime.plugin_sink import make_plugin_sink, plugin_context

        context = plugin_context(self.result_header(), self.opts.out)
        return [make_plugin_sink(plugin, context) for plugin in self.opts.plugins]

    def result_header(self) -> dict:
        """The fields every result line of this run starts with (docs/schemas/result-v1.schema.json)."""
        manifest = self.bundle.manifest
        bundle = {"name": self.bundle.path.resolve().name, "sha256": manifest["manifest_sha256"],
                  "backend": manifest["backend"], "precision": manifest["precision"]}
        return {"run": self.run_id, "station": self.opts.station, "camera": self.opts.camera_name,
                "source": self.source.name, "bundle": bundle}

    def run(self) -> RunSummary:
        """Stream until the source ends, ``max_frames``, or ``loop.stop()``; a source lost for
        good ends the run with ``summary.error`` set. Writes timing.json into --out."""
        error = None
        try:
            summary = self.loop.run(self.opts.max_frames)
        except SourceError as e:
            error = e
            summary = RunSummary(self.loop.frames, self.loop.failed, self.capture.dropped, self.capture.bad,
                                 self.capture.reconnects, 0.0, "source lost", self.loop.times.summary())
        summary.error = error
        if self.out is not None:
            report = {"run": self.run_id, "bundle": str(self.opts.bundle), "source": self.source.name,
                      "mode": self.opts.mode,
                      "throughput": self.opts.throughput, "requests": self.loop.engine.requests,
                      "frame_shape": list(self.capture.frame_shape), **summary.to_dict()}
            if self.tiles is not None:
                report["tiles"] = {"count": len(self.tiles), "overlap": self.opts.overlap}
            self.out.write_report(report)
        return summary

    def close(self) -> None:
        self.capture.stop()
        if self.engine is not None and self.engine is not self._given_engine:
            self.engine.close()
        if self.out is not None:
            self.out.close()

    def abandon(self) -> None:
        """Let go of the camera and the output folder of a session whose loop hangs, for another
        to take them over: its capture stops, its results file and the folder's lock close (a
        write it tries later fails, and ends it)."""
        self.capture.stop()
        for sink in self.sinks:
            if isinstance(sink, JsonLinesSink):
                sink.close()
        if self.out is not None:
            self.out.close()

    def __enter__(self) -> InspectionSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
