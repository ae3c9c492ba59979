"""``edgeseg serve``: every camera of a station file, each its own pipeline in its own thread,
supervised: a camera down at start is waited for, a pipeline that fails is restarted with
backoff and logged while the others go on, and a stop request ends them all."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edgeseg.errors import EdgesegError
from edgeseg.runtime.session import InspectionSession, RunOptions
from edgeseg.station import notify
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
                      rotate_hours=station.results_rotate_hours)


class CameraPipeline:
    """One camera's session, run and restarted until the station stops or its file ends."""

    def __init__(self, station: StationConfig, camera: CameraConfig, stopping: threading.Event):
        self.station, self.camera, self.stopping = station, camera, stopping
        self.frames = self.restarts = 0
        self.last_error: str | None = None
        self.done = False  # ended for good: stopped, or a file or folder that came to its end
        self.session: InspectionSession | None = None  # while one runs
        self.on_session: Callable[[InspectionSession], None] | None = None  # the station adds its metrics sink
        self._totals = {"dropped_frames": 0, "bad_frames": 0, "reconnects": 0}  # of sessions that ended
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
            with InspectionSession(camera_options(self.station, self.camera), self.stopping) as session:
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
        queue = next((sink.queue.waiting for sink in (session.sinks if session else []) if hasattr(sink, "queue")),
                     None)
        engine = {"bundle": session.bundle.path.name, "backend": session.bundle.backend,
                  "precision": session.bundle.precision} if session is not None else {}
        return {"camera_up": capture is not None and capture.state == "running", "frames": self.frames,
                "pipeline_restarts": self.restarts, "mqtt_queue_bytes": queue, "engine": engine,
                "inspected": session is not None and session.loop.frames > 0, "done": self.done,
                "last_error": self.last_error,
                **{name: total + current.get(name, 0) for name, total in self._totals.items()}}


class Station:
    """Every camera's pipeline, started together and stopped together."""

    def __init__(self, config: StationConfig, stopping: threading.Event | None = None):
        self.config = config
        self.stopping = stopping or threading.Event()
        self.pipelines = [CameraPipeline(config, camera, self.stopping) for camera in config.cameras]
        self.metrics: StationMetrics | None = None
        if config.metrics:
            from edgeseg.station.metrics import FrameMetrics, StationMetrics  # prometheus-client: the station extra

            metrics = self.metrics = StationMetrics(self)
            for pipeline in self.pipelines:
                name = pipeline.camera.name
                pipeline.on_session = lambda session, name=name: session.sinks.append(FrameMetrics(metrics, name))

    def run(self) -> None:
        """Start every camera and wait until all are done or a stop request came and they ended;
        systemd is told READY once they run, pinged while every camera is alive, and told STOPPING."""
        server = self._serve_metrics()
        for pipeline in self.pipelines:
            pipeline.thread.start()
        log.info("station %s: %d camera(s) started", self.config.station, len(self.pipelines))
        notify.notify(f"READY=1\nSTATUS=station {self.config.station}: {len(self.pipelines)} camera(s)")
        ping = notify.watchdog_interval()
        while any(p.thread.is_alive() for p in self.pipelines):
            if self.stopping.wait(min(ping or 0.5, 0.5)):
                notify.notify("STOPPING=1")
                break
            if ping is not None and self.healthy():
                notify.notify("WATCHDOG=1")
        for pipeline in self.pipelines:
            while pipeline.thread.is_alive():
                pipeline.thread.join(0.5)
        if server is not None:
            server.shutdown()

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
        """Every camera's pipeline thread is alive (a file camera that ended counts as done)."""
        return all(p.thread.is_alive() or p.done for p in self.pipelines)

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


def results_folder(config: StationConfig, camera: str) -> Path:
    return config.results / camera
