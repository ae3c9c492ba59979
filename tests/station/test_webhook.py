"""Failed parts POSTed to a plant's HTTP endpoint that refuses the first tries: retried with
backoff, in order, none lost."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
from media import free_port


class Endpoint:
    """An HTTP endpoint on loopback that answers 503 to the first ``refuse`` requests."""

    def __init__(self, refuse: int):
        self.received: list[dict] = []
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests += 1
                if outer.requests <= refuse:
                    self.send_response(503)
                else:
                    outer.received.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/edgeseg"

    def close(self) -> None:
        self.server.shutdown()


def test_failed_parts_reach_a_webhook_that_refused_the_first_tries(bundle_factory, synth_data, tmp_path):
    import edgeseg
    from edgeseg.runtime.sources.memory import MemorySource
    from edgeseg.runtime.webhook_sink import WebhookConfig

    frames = [cv2.resize(cv2.imread(str(p)), (120, 100)) for p in sorted((synth_data / "images").iterdir())[:12]]
    endpoint = Endpoint(refuse=3)
    options = edgeseg.RunOptions(bundle_factory("onnxruntime", "fp32").path, MemorySource(frames, len(frames)),
                                 out=tmp_path, status=False, webhook=WebhookConfig(url=endpoint.url))
    try:
        with edgeseg.InspectionSession(options) as session:
            session.run()
    finally:
        endpoint.close()
    lines = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    failed = [line["index"] for line in lines if line["verdict"] == "fail"]
    assert failed and len(failed) < len(lines)  # some parts fail, some pass
    assert [body["index"] for body in endpoint.received] == failed  # each failed part once, in order
    assert endpoint.requests == len(failed) + 3
