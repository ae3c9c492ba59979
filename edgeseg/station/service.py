"""``edgeseg serve``: every camera of a station file, each its own pipeline in its own thread,
supervised: a camera down at start is waited for, a pipeline that fails is restarted with
backoff and logged while the others go on, and a stop request ends them all."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edgeseg.engines import Bundle, Engine, open_engine
from edgeseg.engines.shared import views
from edgeseg.errors import EdgesegError
from edgeseg.runtime.mqtt_sink import MqttSink
from edgeseg.runtime.plugin_sink import check_plugin
from edgeseg.runtime.session import DEFAULT_REQUESTS, InspectionSession, RunOptions
from edgeseg.runtime.sources import FrameSource
from edgeseg.station import notify
from edgeseg.station.check import load_camera
from edgeseg.station.config import CameraConfig, StationConfig

if TYPE_CHECKING:
    from edgeseg.station.metrics import StationMetrics

log = logging.getLogger(__name__)

RESTART_BACKOFF = (1.0, 60.0)  # seconds before a failed pipeline starts again, doubling to the cap


def camera_options(station: StationConfig, camera: CameraConfig) -> RunOptions:
    return RunOptions(camera.bundle, camera.source, out=station.results / camera.name, rules=camera.rules,
                      mode=camera.mode, masks=camera.masks, video=camera.video,
                      overlays=None if camera.overlays == "none" else camera.overlays,
                      give_up_after=camera.give_up_after, status=False, max_fps=camera.max_fps,
                      station=station.station, camera_name=camera.name, mqtt=station.mqtt,
                      webhook=station.webhook, rotate_mb=station.results_rotate_mb,
                      archive_quota_mb=station.archive_quota_mb,
                      rotate_hours=station.results_rotate_hours, plugins=station.plugins_of(camera.name),
                      remote_engine=camera.engine)


class CameraPipeline:
    """One camera's session, run and restarted until the station stops or its file ends."""

    def __init__(self, station: StationConfig, camera: CameraConfig, engine: Engine | None = None,
                 source: Callable[[], FrameSource] | None = None):
        self.station, self.camera = station, camera
        self.source = source  # makes the camera's frame source (a driver of one's own); None: its URI
        self.engine = engine  # a view of the station's engine for this bundle; None: the session opens its own
        self.stopping = threading.Event()  # its own: a reload stops one camera, not the station
        self.frames = self.restarts = 0
        self.last_error: str | None = None
        self.done = False  # ended for good: stopped, or a file or folder that came to its end
        self.session: InspectionSession | None = None  # while one runs
        self.on_session: Callable[[InspectionSession], None] | None = None  # the station adds its metrics sink
        self._totals = {"dropped_frames": 0, "bad_frames": 0, "reconnects": 0}  # of sessions that ended
        self.stuck = False  # the watchdog found frames coming and none inspected
        self._progress: tuple[int, int, float] | None = None  # captured, inspected, when inspected last moved
        self.thread = threading.Thread(target=self.run, name=f"edgeseg-camera-{camera.name}", daemon=True)

    def run(self) -> None:
        delay = RESTART_BACKOFF[0]
        while not self.stopping.is_set():
            if self._run_once():
                self.done = True
                return
            log.warning("camera %s: restarting in %.0f s", self.camera.name, delay)
            if self.stopping.wait(delay):
                return
            self.restarts += 1
            delay = min(delay * 2, RESTART_BACKOFF[1])

    def _run_once(self) -> bool:
        """One session; True when the camera is done (stopped, or a file or folder that ended)."""
        try:
            options = camera_options(self.station, self.camera)
            if self.source is not None:
                options.source = self.source()
            with InspectionSession(options, self.stopping, self.engine) as session:
                if self.on_session is not None:
                    self.on_session(session)
                self.session = session
                try:
                    summary = session.run()
                finally:
                    self._keep_totals(session)
        except EdgesegError as e:
            self.last_error = str(e)
            log.error("camera %s: %s", self.camera.name, e)
            return self.stopping.is_set()
        except Exception as e:  # a pipeline that raises is restarted; the other cameras go on
            self.last_error = f"{type(e).__name__}: {e}"
            log.exception("camera %s: the pipeline failed", self.camera.name)
            return False
        self.frames += summary.frames
        if summary.error is not None:
            self.last_error = str(summary.error)
            log.error("camera %s: %s", self.camera.name, summary.error)
            return False
        log.info("camera %s: %d frames, ended by %s", self.camera.name, summary.frames, summary.ended_by)
        return True

    def stalled_for(self) -> float:
        """Seconds since the last frame was inspected, where frames have arrived since (0: it makes
        progress, or no frame came: a line that stopped is not a stuck pipeline)."""
        session = self.session
        if session is None:
            self._progress = None
            return 0.0
        captured, inspected, now = session.capture.captured, session.loop.frames, time.monotonic()
        if self._progress is None or inspected != self._progress[1]:
            self._progress = (captured, inspected, now)
            return 0.0
        captured_then, _, since = self._progress
        frames_came = captured > captured_then or session.capture.waiting > 0
        return now - since if frames_came else 0.0

    def _keep_totals(self, session: InspectionSession) -> None:
        capture = session.capture
        for name, value in (("dropped_frames", capture.dropped), ("bad_frames", capture.bad),
                            ("reconnects", capture.reconnects)):
            self._totals[name] += value
        self.session = None

    def state(self) -> dict:
        """What the metrics and health endpoints report of this camera, now."""
        session = self.session
        capture = session.capture if session is not None else None
        current = {"dropped_frames": capture.dropped, "bad_frames": capture.bad,
                   "reconnects": capture.reconnects} if capture is not None else {}
        queue = next((sink.queue.waiting for sink in (session.sinks if session else [])
                      if isinstance(sink, MqttSink)), None)
        engine = {"bundle": session.bundle.path.name, "backend": session.bundle.backend,
                  "precision": session.bundle.precision} if session is not None else {}
        return {"camera_up": capture is not None and capture.state == "running", "frames": self.frames,
                "pipeline_restarts": self.restarts, "mqtt_queue_bytes": queue, "engine": engine,
                "inspected": session is not None and session.loop.frames > 0, "done": self.done,
                "last_error": self.last_error,
                **{name: total + current.get(name, 0) for name, total in self._totals.items()}}


class Station:
    """Every camera's pipeline, started together and stopped together."""

    def __init__(self, config: StationConfig, path: Path | None = None,
                 sources: dict[str, Callable[[], FrameSource]] | None = None):
        """``sources``: for cameras named there, a function that makes the camera's frame source
        (a driver of one's own, frames from memory), used instead of its ``source`` URI."""
        self.config, self.path = config, path  # the station file, read again on reload()
        self.sources = sources or {}
        self.stopping = threading.Event()
        self.reload_requested = threading.Event()  # set from a SIGHUP handler; acted on in run()
        self.stuck: list[CameraPipeline] = []  # pipelines the watchdog replaced (their threads hang)
        self.metrics: StationMetrics | None = None
        if config.metrics:
            from edgeseg.station.metrics import StationMetrics  # prometheus-client: the station extra

            self.metrics = StationMetrics(self)
        self.engines, camera_views = shared_engines(config.cameras)
        self.pipelines = [self._pipeline(config, camera, camera_views.get(camera.name)) for camera in config.cameras]

    def _watch(self) -> None:
        """A pipeline whose camera gives frames it does not inspect for ``watchdog_seconds`` (a
        stuck backend call, a sink that hangs) is marked stuck, so health fails and systemd's
        watchdog pings stop, and a new pipeline takes the camera over; the stuck thread is left."""
        limit = self.config.watchdog_seconds
        if not limit:
            return
        for i, pipeline in enumerate(self.pipelines):
            if pipeline.stuck or pipeline.stalled_for() < limit:
                continue
            pipeline.stuck = True
            pipeline.stopping.set()
            if pipeline.session is not None:  # its camera and results folder go to the new pipeline
                pipeline.session.abandon()
            log.error("camera %s: no frame inspected for %.0f s while frames arrive; its pipeline is replaced",
                      pipeline.camera.name, limit)
            replacement = self._pipeline(self.config, pipeline.camera)
            replacement.restarts = pipeline.restarts + 1
            replacement.thread.start()
            self.pipelines[i] = replacement
            self.stuck.append(pipeline)

    def _pipeline(self, config: StationConfig, camera: CameraConfig, engine: Engine | None = None) -> CameraPipeline:
        pipeline = CameraPipeline(config, camera, engine, self.sources.get(camera.name))
        if self.metrics is not None:
            from edgeseg.station.metrics import FrameMetrics

            metrics, name = self.metrics, camera.name
            pipeline.on_session = lambda session: session.sinks.append(FrameMetrics(metrics, name))
        return pipeline

    def run(self) -> None:
        """Start every camera and wait until all are done or a stop request came and they ended;
        systemd is told READY once they run, pinged while every camera is alive, and told STOPPING."""
        server = self._serve_metrics()
        for pipeline in self.pipelines:
            pipeline.thread.start()
        log.info("station %s: %d camera(s) started", self.config.station, len(self.pipelines))
        notify.notify(f"READY=1\nSTATUS=station {self.config.station}: {len(self.pipelines)} camera(s)")
        ping = notify.watchdog_interval()
        while any(p.thread.is_alive() for p in self.pipelines) or self.reload_requested.is_set():
            if self.stopping.wait(min(ping or 0.5, 0.5)):
                notify.notify("STOPPING=1")
                break
            self._watch()
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                notify.notify("RELOADING=1")
                self.reload()
                notify.notify("READY=1")
            if ping is not None and self.healthy():
                notify.notify("WATCHDOG=1")
        for pipeline in self.pipelines:
            while pipeline.thread.is_alive():
                pipeline.thread.join(0.5)
        if server is not None:
            server.shutdown()
        for engine in self.engines:
            engine.close()

    def _serve_metrics(self):
        """The metrics and health endpoints, where the station file asks for them; a port that is
        taken is logged, and the station inspects without them."""
        if self.metrics is None or not self.config.metrics:
            return None
        from edgeseg.station.metrics import serve_http

        host, port = self.config.metrics.rsplit(":", 1)
        try:
            server = serve_http(self, self.metrics, (host, int(port)))
        except OSError as e:
            log.error("metrics: cannot listen on %s (%s); the station runs without them", self.config.metrics,
                      e.strerror or e)
            return None
        log.info("metrics and health at http://%s/metrics, /healthz, /readyz", self.config.metrics)
        return server

    def healthy(self) -> bool:
        """Every camera's pipeline thread is alive (a file camera that ended counts as done), and
        none hangs: a station with a stuck pipeline stops pinging systemd, which restarts it."""
        return not self.stuck and all(p.thread.is_alive() or p.done for p in self.pipelines)

    def health(self) -> tuple[bool, dict]:
        """Healthy: every camera is up (or done), its pipeline alive."""
        cameras = {p.camera.name: p.state() for p in self.pipelines}
        ok = self.healthy() and all(s["camera_up"] or s["done"] for s in cameras.values())
        return ok, {"station": self.config.station, "healthy": ok, "cameras": {
            name: {k: s[k] for k in ("camera_up", "done", "frames", "pipeline_restarts", "last_error")}
            for name, s in cameras.items()}}

    def readiness(self) -> tuple[bool, dict]:
        """Ready: every camera has inspected a frame (or is done)."""
        ready = {p.camera.name: p.state()["inspected"] or p.done for p in self.pipelines}
        return all(ready.values()), {"station": self.config.station, "ready": all(ready.values()), "cameras": ready}

    def stop(self) -> None:
        self.stopping.set()
        for pipeline in self.pipelines:
            pipeline.stopping.set()

    def reload(self) -> None:
        """Read the station file again: a camera whose settings changed is started anew once its new
        bundle has loaded and been verified (its frames in flight finish on the old one); one whose
        bundle or rules fail to load keeps running as it was, with the error logged; cameras added
        start, cameras removed stop. A station file that is not valid changes nothing."""
        from edgeseg.station.config import read_station

        try:
            new = read_station(self.path) if self.path else self.config
        except EdgesegError as e:
            log.error("reload: %s; the station runs as it was", e)
            return
        running = {p.camera.name: p for p in self.pipelines}
        pipelines = []
        for camera in new.cameras:
            current = running.pop(camera.name, None)
            if current is not None and camera_options(current.station, current.camera) == camera_options(new, camera):
                pipelines.append(current)
                continue
            problem = _cannot_load(new, camera)
            if problem is not None and current is not None:
                log.error("reload: camera %s keeps running as it was: %s", camera.name, problem)
                pipelines.append(current)
                continue
            if current is not None:
                _stop(current)
            pipeline = self._pipeline(new, camera)
            pipeline.thread.start()
            pipelines.append(pipeline)
            log.info("reload: camera %s %s", camera.name, "started anew" if current else "added")
        for removed in running.values():
            _stop(removed)
            log.info("reload: camera %s removed", removed.camera.name)
        self.pipelines, self.config = pipelines, new


def requests_of(camera: CameraConfig) -> int:
    """The requests a camera's loop uses: one in resize mode, several for a frame's tiles."""
    return DEFAULT_REQUESTS if camera.mode == "tile" else 1


def shared_engines(cameras: list[CameraConfig]) -> tuple[list[Engine], dict[str, Engine]]:
    """One engine per bundle that several cameras use, opened with the requests of them all (the
    throughput hint on OpenVINO, so their frames run side by side), and each camera's view of it.
    A bundle that does not load here is left to each camera's pipeline, which reports it."""
    by_bundle: dict[Path, list[CameraConfig]] = {}
    for camera in cameras:
        if camera.engine is None:  # a camera on a serving engine has its own client
            by_bundle.setdefault(camera.bundle.resolve(), []).append(camera)
    engines: list[Engine] = []
    camera_views: dict[str, Engine] = {}
    for path, group in by_bundle.items():
        if len(group) < 2:
            continue
        counts = [requests_of(camera) for camera in group]
        try:
            bundle = Bundle.read(path)
            engine = (open_engine(bundle, requests=sum(counts), hint="throughput") if bundle.backend == "openvino"
                      else open_engine(bundle, requests=sum(counts)))
        except EdgesegError as e:
            log.error("bundle %s: %s; its cameras each try on their own", path, e)
            continue
        engines.append(engine)
        for camera, view in zip(group, views(engine, counts), strict=True):
            camera_views[camera.name] = view
        log.info("bundle %s: one engine of %d requests for cameras %s", path.name, engine.requests,
                 ", ".join(camera.name for camera in group))
    return engines, camera_views


def _cannot_load(station: StationConfig, camera: CameraConfig) -> str | None:
    """Why a camera's bundle, rules or plugin sinks would not load here (None: they do), tried
    before the running pipeline is replaced."""
    try:
        load_camera(camera)
        for plugin in station.plugins_of(camera.name):
            check_plugin(plugin)
    except EdgesegError as e:
        return str(e)
    return None


def _stop(pipeline: CameraPipeline, timeout: float = 30.0) -> None:
    """Stop a camera after its frame at hand (its results written) and wait for it."""
    pipeline.stopping.set()
    pipeline.thread.join(timeout)
