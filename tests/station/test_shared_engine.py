"""Cameras that use the same bundle share one engine: one model in memory, each camera its own
requests, and each camera's results what it would get with an engine of its own."""

from __future__ import annotations

import json

import numpy as np
import yaml
from media import numbered_frames, write_video

from edgeseg.engines import open_engine
from edgeseg.engines.shared import views
from edgeseg.runtime.session import InspectionSession, RunOptions
from edgeseg.station.config import read_station
from edgeseg.station.service import Station


def test_a_view_is_a_share_of_the_parents_requests_and_buffers(bundle_factory):
    with open_engine(bundle_factory("openvino", "fp32").path, requests=6) as parent:
        first, second, third = views(parent, [1, 4, 1])
        assert (first.ids, second.ids, third.ids) == ([0], [1, 2, 3, 4], [5])
        assert second.inputs[0] is parent.inputs[1] and third.mask is parent.masks[5]  # nothing copied
        rng = np.random.default_rng(0)
        third.input[:] = rng.integers(0, 255, third.input.shape, dtype=np.uint8)
        third.infer()
        parent.inputs[0][:] = third.input
        parent.infer(0)
        assert np.array_equal(third.mask, parent.masks[0])
        done = []
        for _ in range(2):  # the view's own requests in flight, collected in order
            request = second.acquire()
            second.inputs[request][:] = third.input
            second.submit(request, done.append)
        second.drain()
        assert done == [0, 1] and all(np.array_equal(second.masks[r], third.mask) for r in done)


def _results(folder) -> list[tuple]:
    lines = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    return [(line["index"], line["verdict"], [(r["class_id"], r["area"]) for r in line["regions"]]) for line in lines]


def test_cameras_on_one_bundle_share_its_engine_and_get_their_own_results(bundle_factory, synth_data, tmp_path):
    import cv2

    shared, other = bundle_factory("openvino", "fp32").path, bundle_factory("onnxruntime", "fp32").path
    photos = sorted((synth_data / "images").iterdir())[:10]
    video = write_video(tmp_path / "line.mp4", [cv2.resize(cv2.imread(str(p)), (192, 160)) for p in photos])
    cameras = [{"name": "a", "source": str(video), "bundle": str(shared)},
               {"name": "b", "source": str(video), "bundle": str(shared)},
               {"name": "tiles", "source": str(video), "bundle": str(shared), "mode": "tile"},
               {"name": "alone", "source": str(write_video(tmp_path / "x.mp4", numbered_frames(5))),
                "bundle": str(other)}]
    (tmp_path / "station.yaml").write_text(yaml.safe_dump({"station": "s", "results": "results",
                                                           "metrics": None, "cameras": cameras}))
    station = Station(read_station(tmp_path / "station.yaml"))
    assert len(station.engines) == 1 and station.engines[0].requests == 1 + 1 + 4  # one model, every request
    station.run()
    results = tmp_path / "results"
    for name, mode in (("a", "resize"), ("tiles", "tile")):  # what an engine of its own gives
        with InspectionSession(RunOptions(shared, str(video), out=tmp_path / f"own-{name}", mode=mode,
                                          status=False)) as session:
            session.run()
        assert _results(results / name) == _results(tmp_path / f"own-{name}")
    assert _results(results / "b") == _results(results / "a") and len(_results(results / "a")) == len(photos)
    assert len(_results(results / "alone")) == 5
