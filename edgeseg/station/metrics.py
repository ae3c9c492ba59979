"""Health and metrics of a running station, on loopback by default: ``/metrics`` in Prometheus'
text format (prometheus-client), ``/healthz`` (every camera's pipeline alive and its camera up)
and ``/readyz`` (every camera has inspected a frame), each with a JSON body saying why."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

from edgeseg.runtime.sinks import FrameResult, Sink
from edgeseg.runtime.timing import STAGES

BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)  # seconds


class FrameMetrics(Sink):
    """Counts and times every frame of one camera (a sink of its session)."""

    def __init__(self, metrics: StationMetrics, camera: str):
        self.camera, self.m = camera, metrics
        self._frames = metrics.frames.labels(camera)
        self._verdicts = {v: metrics.verdicts.labels(camera, v) for v in ("pass", "fail")}
        self._stages = [metrics.stage_seconds.labels(camera, stage) for stage in STAGES[:4]]

    def write(self, result: FrameResult) -> None:
        self._frames.inc()
        verdict = result.inspection.verdict
        self._verdicts["pass" if verdict.passed else "fail"].inc()
        for region in result.inspection.regions:
            self.m.regions.labels(self.camera, region.class_name).inc()
        for stage, seconds in zip(self._stages, result.timings[:4], strict=True):
            stage.observe(float(seconds))


class StationMetrics:
    def __init__(self, station):
        self.station, self.registry = station, CollectorRegistry()
        self.frames = Counter("edgeseg_frames", "frames inspected", ["camera"], registry=self.registry)
        self.verdicts = Counter("edgeseg_verdicts", "verdicts given", ["camera", "verdict"], registry=self.registry)
        self.regions = Counter("edgeseg_defect_regions", "defect regions found", ["camera", "class_name"],
                               registry=self.registry)
        self.stage_seconds = Histogram("edgeseg_stage_seconds", "time per frame in each stage",
                                       ["camera", "stage"], buckets=BUCKETS, registry=self.registry)
        self.registry.register(_PipelineCollector(station))


class _PipelineCollector:
    """What the pipelines know at scrape time: camera up, drops, bad frames, reconnects,
    restarts, the MQTT queue and which engine each camera runs."""

    def __init__(self, station):
        self.station = station

    def collect(self):
        up = GaugeMetricFamily("edgeseg_camera_up", "1 while the camera gives frames", labels=["camera"])
        counts = {name: CounterMetricFamily(f"edgeseg_{name}", help_, labels=["camera"]) for name, help_ in (
            ("dropped_frames", "frames a live camera gave while the loop was busy"),
            ("bad_frames", "frames skipped as unreadable"), ("reconnects", "times the camera was reopened"),
            ("pipeline_restarts", "times the camera's pipeline was started again after failing"))}
        queued = GaugeMetricFamily("edgeseg_mqtt_queue_bytes", "results waiting on disk for the broker",
                                   labels=["camera"])
        engine = InfoMetricFamily("edgeseg_engine", "the bundle each camera runs", labels=["camera"])
        for pipeline in self.station.pipelines:
            state = pipeline.state()
            camera = pipeline.camera.name
            up.add_metric([camera], 1.0 if state["camera_up"] else 0.0)
            for name in ("dropped_frames", "bad_frames", "reconnects", "pipeline_restarts"):
                counts[name].add_metric([camera], state[name])
            if state["mqtt_queue_bytes"] is not None:
                queued.add_metric([camera], state["mqtt_queue_bytes"])
            if state["engine"]:
                engine.add_metric([camera], state["engine"])
        yield from (up, *counts.values(), queued, engine)


def serve_http(station, metrics: StationMetrics, address: tuple[str, int]) -> ThreadingHTTPServer:
    """The endpoints, served in a thread until ``server.shutdown()``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            if self.path == "/metrics":
                self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            elif self.path in ("/healthz", "/readyz"):
                ok, body = station.health() if self.path == "/healthz" else station.readiness()
                self._send(200 if ok else 503, json.dumps(body).encode(), "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # scrapes every few seconds are not news
            pass

    server = ThreadingHTTPServer(address, Handler)
    threading.Thread(target=server.serve_forever, name="edgeseg-metrics", daemon=True).start()
    return server
