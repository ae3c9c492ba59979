"""The inspection loop end to end on a compiled bundle: results per frame that match the engine,
throughput and tile modes, tiling and stitching, zero allocation, the CLI and a clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from media import edgeseg_process, free_port, serve_stream, stop, wait_for, write_video

from edgeseg.engines import open_engine
from edgeseg.errors import ConfigError
from edgeseg.runtime.postprocess import Postprocessor
from edgeseg.runtime.regions import find_regions
from edgeseg.runtime.rules import InspectionRules
from edgeseg.runtime.session import InspectionSession, RunOptions
from edgeseg.runtime.sources.memory import MemorySource
from edgeseg.runtime.tiles import TileGrid, tile_starts

FRAME_H, FRAME_W = 128, 160


@pytest.fixture(scope="module")
def stream(synth_data, tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    """A short video of synthetic inspection images at 160x128, and its frames as OpenCV decodes them."""
    images = sorted((synth_data / "images").iterdir())[:12]
    frames = [cv2.resize(cv2.imread(str(p)), (FRAME_W, FRAME_H)) for p in images]
    path = write_video(tmp_path_factory.mktemp("video") / "line.mp4", frames)
    capture, decoded = cv2.VideoCapture(str(path)), []
    while (frame := capture.read()[1]) is not None:
        decoded.append(frame)
    return path, decoded


def _run(bundle: Path, source: str, out: Path | None = None, **options):
    session = InspectionSession(RunOptions(bundle, source, out=out, status=False, **options))
    try:
        return session.run(), session
    finally:
        session.close()


def _lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def _engine_mask(engine, image: np.ndarray) -> np.ndarray:
    """What the model says of one image at its input size, done by hand."""
    height, width = engine.spec.height, engine.spec.width
    small = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    engine.input[0, :, :, 0] = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    engine.infer()
    return engine.mask[0].copy()


def test_a_run_writes_every_frame_with_masks_that_match_the_engine(bundle_factory, stream, tmp_path):
    bundle = bundle_factory("openvino", "fp32").path
    video, frames = stream
    summary, _ = _run(bundle, str(video), tmp_path, masks=True, video=True, overlays="all")
    assert (summary.frames, summary.dropped, summary.ended_by) == (len(frames), 0, "end of source")
    lines = _lines(tmp_path)
    assert [line["index"] for line in lines] == list(range(len(frames)))
    assert all(line["verdict"] in ("pass", "fail") and set(line["timings_ms"]) ==
               {"capture_wait", "preprocess", "infer", "postprocess"} for line in lines)
    with open_engine(bundle) as engine:
        for i, frame in enumerate(frames):
            # scaled centre to centre (INTER_NEAREST would shift labels by up to a pixel)
            expected = cv2.resize(_engine_mask(engine, frame), (FRAME_W, FRAME_H),
                                  interpolation=cv2.INTER_NEAREST_EXACT)
            written = cv2.imread(str(tmp_path / "masks" / f"{i:08d}.png"), cv2.IMREAD_UNCHANGED)
            np.testing.assert_array_equal(written, expected)
            assert (lines[i]["verdict"] == "fail") == bool(expected.any())  # default rule: any defect fails
    report = json.loads((tmp_path / "timing.json").read_text())
    assert report["frames"] == len(frames) and report["frame_shape"] == [FRAME_H, FRAME_W, 3]
    for stage in ("capture_wait", "preprocess", "infer", "postprocess", "sink", "end_to_end"):
        s = report["timing_ms"][stage]
        assert 0 <= s["p50_ms"] <= s["p90_ms"] <= s["p99_ms"] <= s["max_ms"]
    segments = sorted((tmp_path / "video").glob("*.mp4"))
    assert len(segments) == 1 and segments[0].name == f"{lines[0]['run']}-0001.mp4"
    overlay = cv2.VideoCapture(str(segments[0]))
    assert int(overlay.get(cv2.CAP_PROP_FRAME_COUNT)) == len(frames)
    assert len(list((tmp_path / "overlays").glob("*.jpg"))) == len(frames)


def test_throughput_mode_gives_the_same_results_in_frame_order(bundle_factory, stream, tmp_path):
    bundle = bundle_factory("openvino", "fp32").path
    _run(bundle, str(stream[0]), tmp_path / "latency")
    summary, session = _run(bundle, str(stream[0]), tmp_path / "throughput", throughput=True, requests=3)
    assert session.engine.requests == 3 and summary.frames == len(stream[1])
    latency, throughput = _lines(tmp_path / "latency"), _lines(tmp_path / "throughput")
    assert [line["index"] for line in throughput] == list(range(len(stream[1])))
    assert [(a["verdict"], a["regions"]) for a in latency] == [(b["verdict"], b["regions"]) for b in throughput]


@pytest.mark.parametrize("source", ["video", "frames in memory"])
def test_tile_mode_stitches_native_resolution_tiles_by_the_rule(bundle_factory, stream, tmp_path, source):
    """From a video, and from frames in memory (a source that lends its buffers to resize mode,
    whereas tile mode's crops are views of the ring's own)."""
    bundle = bundle_factory("onnxruntime", "fp32").path
    video, frames = stream
    summary, session = _run(bundle, str(video) if source == "video" else MemorySource(frames, len(frames)),
                            tmp_path, mode="tile", overlap=16, masks=True)
    grid = session.tiles
    assert len(grid) == len(tile_starts(FRAME_H, 64, 16)) * len(tile_starts(FRAME_W, 64, 16)) == 9
    with open_engine(bundle) as engine:
        for i in (0, 5):
            expected = np.full((FRAME_H, FRAME_W), 255, np.uint8)
            for tile in grid.tiles:
                crop = frames[i][grid.crop(tile)]
                engine.input[0, :, :, 0] = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
                engine.infer()
                expected[tile.to] = engine.mask[0][tile.keep]
            written = cv2.imread(str(tmp_path / "masks" / f"{i:08d}.png"), cv2.IMREAD_UNCHANGED)
            np.testing.assert_array_equal(written, expected)


@pytest.mark.parametrize("length, tile, overlap", [(160, 64, 16), (128, 64, 0), (1024, 256, 32), (300, 256, 40),
                                                   (64, 64, 8)])
def test_tiles_cover_the_frame_and_every_pixel_comes_from_one_tile_far_from_its_edge(length, tile, overlap):
    grid = TileGrid(length, length + 7, tile, tile, overlap) if length + 7 >= tile else None
    owner = np.zeros((length, length + 7), np.int32)
    for tile_def in grid.tiles:
        owner[tile_def.to] += 1
        ys, xs = tile_def.keep
        # what a tile gives lies at least overlap // 2 from its edges, except at the frame's own border
        for kept, _at, size, frame_size, to in ((ys, tile_def.y, tile, length, tile_def.to[0]),
                                                (xs, tile_def.x, tile, length + 7, tile_def.to[1])):
            if to.start > 0:
                assert kept.start >= overlap // 2
            if to.stop < frame_size:
                assert size - kept.stop >= overlap // 2
        assert tile_def.y + tile <= length and tile_def.x + tile <= length + 7
    assert (owner == 1).all()  # every pixel exactly once


def test_stitching_ignores_what_tiles_see_near_their_edges():
    """Tiles whose border bands are garbage still stitch into the true mask: the rule keeps
    only pixels at least overlap // 2 from a tile's inner edges."""
    height, width, tile, overlap = 100, 130, 40, 12
    truth = np.random.default_rng(1).integers(0, 4, (height, width), dtype=np.uint8)
    grid = TileGrid(height, width, tile, tile, overlap)
    masks = [np.zeros((1, tile, tile), np.uint8)]
    engine = SimpleNamespace(spec=SimpleNamespace(height=tile, width=tile, confidence_name=None),
                             masks=masks, confidences=[None])
    post = Postprocessor(engine, (height, width), InspectionRules(), ["bg", "a", "b", "c"], grid)
    band = overlap // 2
    for number, t in enumerate(grid.tiles):
        masks[0][0] = truth[grid.crop(t)]
        inner = masks[0][0].copy()
        masks[0][0][:] = 9  # garbage in the band near each inner edge
        y0 = band if t.y > 0 else 0
        x0 = band if t.x > 0 else 0
        y1 = tile - band if t.y + tile < height else tile
        x1 = tile - band if t.x + tile < width else tile
        masks[0][0][y0:y1, x0:x1] = inner[y0:y1, x0:x1]
        post.stitch(0, number)
    np.testing.assert_array_equal(post.mask, truth)


def test_tile_mode_refuses_frames_smaller_than_a_tile_and_bad_overlaps():
    with pytest.raises(ConfigError, match="does not fit"):
        TileGrid(50, 200, 64, 64, 8)
    with pytest.raises(ConfigError, match="overlap"):
        TileGrid(200, 200, 64, 64, 64)


def test_regions_found_at_model_size_match_those_of_the_upscaled_mask():
    small = np.zeros((64, 64), np.uint8)
    small[10:20, 5:30] = 1
    small[40:44, 40:42] = 2
    cv2.circle(small, (50, 15), 6, 3, -1)
    names = ["bg", "a", "b", "c"]
    big = cv2.resize(small, (160, 128), interpolation=cv2.INTER_NEAREST_EXACT)
    at_size = find_regions(big, names)
    scaled = find_regions(small, names, scale=(2.5, 2.0))
    assert [r.class_id for r in scaled] == [r.class_id for r in at_size]
    for a, b in zip(scaled, at_size, strict=True):
        assert abs(a.area - b.area) <= 0.1 * b.area + 6
        assert all(abs(p - q) <= 3 for p, q in zip(a.bbox, b.bbox, strict=True))
        assert abs(a.centroid[0] - b.centroid[0]) < 1.5 and abs(a.centroid[1] - b.centroid[1]) < 1.5


def test_a_confidence_threshold_turns_unsure_pixels_to_background():
    masks = [np.ones((1, 4, 4), np.uint8)]
    confidences = [np.full((1, 4, 4), 0.9, np.float32)]
    confidences[0][0, :2] = 0.3
    engine = SimpleNamespace(spec=SimpleNamespace(height=4, width=4, confidence_name="confidence"),
                             masks=masks, confidences=confidences)
    post = Postprocessor(engine, (8, 8), InspectionRules(confidence_threshold=0.5), ["bg", "a"])
    assert post.resized(0)
    regions = post.inspect().regions
    assert len(regions) == 1 and regions[0].area == 32 and regions[0].bbox == (0, 4, 8, 4)
    assert regions[0].confidence == pytest.approx(0.9)
    assert (post.frame_mask()[:4] == 0).all() and (post.frame_mask()[4:] == 1).all()


# Measured in a fresh process, as the runtime runs (see the engine's allocation test).
_LOOP_ALLOCATION_PROBE = """
import gc, json, sys, tracemalloc
from pathlib import Path
from edgeseg.runtime.session import InspectionSession, RunOptions
from edgeseg.runtime.sources.memory import MemorySource

source = sys.argv[2]
if sys.argv[4] == "memory":  # the video's frames lent from memory, not copied into the ring
    import cv2
    from edgeseg.runtime.sources.memory import MemorySource
    video, frames = cv2.VideoCapture(source), []
    while (frame := video.read()[1]) is not None:
        frames.append(frame)
    source = MemorySource(frames)
session = InspectionSession(RunOptions(Path(sys.argv[1]), source, status=False))
assert session.capture.lending == (sys.argv[4] == "memory")
loop = session.loop
# The mask is set after inference, whatever the test model predicts: with defects every frame
# gets the same two regions, so regions and verdicts are made; without, none.
engine, infer = session.engine, session.engine.infer
mask, blob, speck = engine.mask[0], engine.mask[0, 10:30, 20:60], engine.mask[0, 80:84, 90:93]
with_defects = sys.argv[3] == "defects"

def infer_with_known_mask(request=0):
    infer(request)
    mask.fill(0)
    if with_defects:
        blob.fill(1)
        speck.fill(2)
engine.infer = infer_with_known_mask
for _ in range(20):
    loop._one_frame()
gc.collect()
gc.disable()
tracemalloc.start()
for _ in range(200):  # one-time caches fill while traced
    assert loop._one_frame()
start, _ = tracemalloc.get_traced_memory()
tracemalloc.reset_peak()
kept = []
for window in range(2):
    before, _ = tracemalloc.get_traced_memory()
    for _ in range(300):
        assert loop._one_frame()
    kept.append(tracemalloc.get_traced_memory()[0] - before)
_, peak = tracemalloc.get_traced_memory()
session.close()
print(json.dumps({"kept": min(kept), "windows": kept, "peak": peak - start, "defect_frames": loop.failed,
                  "model_mask": session.engine.mask.nbytes, "frame": session.capture.frames[0].nbytes}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("frames_with, source", [("no defects", "video"), ("defects", "video"),
                                                 ("defects", "memory")])
def test_a_frame_allocates_nothing_from_capture_to_verdict(bundle_factory, synth_data, tmp_path, frames_with,
                                                           source):
    """Over 600 traced frames of a 320x256 video (decoded into the ring, or lent to it from
    memory) through the whole loop (capture thread, ring, resize into the engine, inference,
    threshold, regions, verdict): no growth, and no buffer the size of even the model's mask is
    made per frame. With defects, the regions found are the
    only new objects, and they are gone with the frame."""
    images = sorted((synth_data / "images").iterdir())
    frames = [cv2.resize(cv2.imread(str(images[i % len(images)])), (320, 256)) for i in range(840)]
    video = write_video(tmp_path / "long.mp4", frames)
    bundle = bundle_factory("openvino", "fp32", size=128).path
    out = subprocess.run([sys.executable, "-c", _LOOP_ALLOCATION_PROBE, str(bundle), str(video), frames_with, source],
                         capture_output=True, text=True, check=True)
    measured = json.loads(out.stdout)
    assert measured["model_mask"] == 128 * 128 and measured["frame"] == 320 * 256 * 3
    assert measured["defect_frames"] == (820 if frames_with == "defects" else 0)
    assert measured["peak"] < measured["model_mask"], measured  # 16 kB: a per-frame copy of anything shows
    assert measured["kept"] < 1024, measured


# --- the command ------------------------------------------------------------------------------

def _edgeseg(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeseg", *args], capture_output=True, text=True, **kwargs)


def test_edgeseg_run_with_rules_prints_the_summary_and_stage_table(bundle_factory, stream, tmp_path):
    bundle = bundle_factory("openvino", "fp32").path
    rules = tmp_path / "rules.yaml"
    rules.write_text("min_region_area: 100000000\n")  # no region is large enough to count: all pass
    out = _edgeseg("run", str(bundle), "--source", str(stream[0]), "--out", str(tmp_path / "o"), "--rules",
                   str(rules), "--quiet")
    assert out.returncode == 0, out.stderr
    assert f"{len(stream[1])} frames" in out.stdout and "ended by end of source" in out.stdout
    assert "end_to_end" in out.stdout and "p99" in out.stdout
    assert {line["verdict"] for line in _lines(tmp_path / "o")} == {"pass"}


def test_edgeseg_run_explains_a_missing_source_and_a_bad_rules_file(bundle_factory, tmp_path):
    bundle = bundle_factory("openvino", "fp32").path
    out = _edgeseg("run", str(bundle), "--source", str(tmp_path / "nothing.mp4"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "no such file" in out.stderr
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - class: scratch\n    max_regions: 0\n")
    (tmp_path / "img").mkdir()
    cv2.imwrite(str(tmp_path / "img" / "a.png"), np.zeros((64, 64), np.uint8))
    out = _edgeseg("run", str(bundle), "--source", str(tmp_path / "img"), "--rules", str(rules))
    assert out.returncode == 2 and "unknown class 'scratch'" in out.stderr and "Traceback" not in out.stderr


def test_sigterm_stops_a_live_run_cleanly_with_every_result_written(bundle_factory, tmp_path):
    bundle = bundle_factory("openvino", "fp32").path
    port = free_port()
    server = serve_stream(f"udp://127.0.0.1:{port}?pkt_size=1316", seconds=60)
    out_dir = tmp_path / "o"
    run = edgeseg_process("run", bundle, "--source", f"udp://127.0.0.1:{port}", "--out", out_dir)
    try:
        results = out_dir / "results.jsonl"
        assert wait_for(lambda: results.exists() and results.read_text().count("\n") >= 10, timeout=40)
        run.send_signal(signal.SIGTERM)
        stdout, stderr = run.communicate(timeout=20)
    finally:
        run.kill()
        stop(server)
    assert run.returncode == 0, stderr
    assert "ended by stop request (SIGTERM)" in stdout
    lines = _lines(out_dir)
    report = json.loads((out_dir / "timing.json").read_text())
    assert report["frames"] == len(lines) >= 10 and report["ended_by"] == "stop request"
    assert [line["index"] for line in lines] == sorted(line["index"] for line in lines)


def test_sigterm_ends_a_run_whose_stream_is_down_within_a_bound(bundle_factory, tmp_path):
    bundle = bundle_factory("onnxruntime", "fp32").path
    url = f"udp://127.0.0.1:{free_port()}?pkt_size=1316"
    server = serve_stream(url, seconds=60)
    out_dir = tmp_path / "o"
    run = edgeseg_process("run", bundle, url.split("?")[0], "--out", out_dir)
    try:
        results = out_dir / "results.jsonl"
        assert wait_for(lambda: results.exists() and results.read_text().count("\n") >= 5, timeout=40)
        stop(server)  # the stream is gone: the run is reconnecting, no frame comes
        time.sleep(1.0)
        run.send_signal(signal.SIGTERM)
        stdout, stderr = run.communicate(timeout=15)  # an open attempt times out after 5 s, then it stops
    finally:
        run.kill()
        stop(server)
    assert run.returncode == 0, stderr
    report = json.loads((out_dir / "timing.json").read_text())
    assert report["ended_by"] == "stop request" and report["frames"] == len(_lines(out_dir)) >= 5


def test_sigterm_ends_the_wait_for_a_camera_that_never_came(bundle_factory, tmp_path):
    run = edgeseg_process("run", bundle_factory("onnxruntime", "fp32").path,
                          f"http://127.0.0.1:{free_port()}/none.ts", "--out", tmp_path / "o")
    try:
        time.sleep(2.0)
        assert run.poll() is None  # a camera down at start is waited for, not fatal
        run.send_signal(signal.SIGTERM)
        stdout, stderr = run.communicate(timeout=15)
    finally:
        run.kill()
    assert run.returncode == 0, stderr
    assert "stopped (SIGTERM) while waiting for the source" in stdout
    assert "waiting for it (retrying with backoff)" in stderr


def test_a_window_without_gui_support_is_a_clear_error():
    from edgeseg.runtime.overlay import OverlayRenderers
    from edgeseg.runtime.sinks import WindowSink

    gui = [line.split(":", 1)[1].strip() for line in cv2.getBuildInformation().splitlines() if "GUI:" in line]
    assert gui == ["NONE"]  # the headless wheel we depend on
    renderer = OverlayRenderers(["bg", "a"], [(0, 0, 0), (255, 0, 0)])
    with pytest.raises(ConfigError, match="no window support"):
        WindowSink(renderer)


def test_every_result_line_follows_the_published_schema(bundle_factory, stream, tmp_path):
    import jsonschema

    schema_file = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "result-v1.schema.json"
    schema = json.loads(schema_file.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    bundle = bundle_factory("openvino", "fp32").path
    _run(bundle, str(stream[0]), tmp_path)
    lines = _lines(tmp_path)
    for line in lines:
        jsonschema.validate(line, schema)
    assert any(line["regions"] for line in lines)  # regions were checked too, not only empty lists
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert lines[0]["bundle"]["sha256"] == manifest["manifest_sha256"] and lines[0]["source"] == str(stream[0])


def test_a_second_run_into_the_same_folder_continues_it_and_loses_nothing(bundle_factory, stream, tmp_path):
    bundle = bundle_factory("onnxruntime", "fp32").path
    video, frames = stream
    _run(bundle, str(video), tmp_path, max_frames=5)
    with open(tmp_path / "results.jsonl", "a") as results:
        results.write('{"schema_version": 1, "run": "killed mid-li')  # as a run killed mid-write leaves it
    _run(bundle, str(video), tmp_path)
    text = (tmp_path / "results.jsonl").read_text().splitlines()
    whole = [json.loads(line) for line in text if not line.startswith('{"schema_version": 1, "run": "killed')]
    assert len(whole) == 5 + len(frames) and len(text) == len(whole) + 1
    first, second = whole[0]["run"], whole[-1]["run"]
    assert first != second and [line["run"] for line in whole] == [first] * 5 + [second] * len(frames)
    runs = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert [(run["run"], run["frames"]) for run in runs] == [(first, 5), (second, len(frames))]
    assert json.loads((tmp_path / "timing.json").read_text())["run"] == second


def test_a_second_process_on_the_same_folder_is_refused_in_one_line(bundle_factory, stream, tmp_path):
    from edgeseg.runtime.outdir import OutputFolder

    held = OutputFolder(tmp_path)  # as a run in progress holds it
    try:
        bundle = bundle_factory("onnxruntime", "fp32").path
        result = subprocess.run([sys.executable, "-m", "edgeseg", "run", str(bundle), str(stream[0]), "--out",
                                 str(tmp_path), "--quiet"], capture_output=True, text=True, timeout=120)
    finally:
        held.close()
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"another edgeseg run (pid {os.getpid()}) writes into this folder" in result.stderr
    assert not (tmp_path / "results.jsonl").exists()


def test_a_folder_of_photos_of_mixed_sizes_gives_one_result_and_one_mask_per_photo(bundle_factory, synth_data,
                                                                                      tmp_path):
    photos = tmp_path / "photos[line 1]"  # a bracket in the name is a name, not a pattern
    photos.mkdir()
    sources = sorted((synth_data / "images").iterdir())[:6]
    for i, path in enumerate(sources):  # synthetic photos of several sizes, some turned to colour
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(photos / f"part-{i}.png"), cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if i % 2 else image)
    (photos / "part-9.png").write_bytes(b"\x89PNG truncated")
    assert len({cv2.imread(str(p)).shape for p in photos.glob("part-[0-5].png")}) > 2
    out = tmp_path / "out"
    for strict, code in ((False, 0), (True, 1)):
        result = subprocess.run([sys.executable, "-m", "edgeseg", "run", str(bundle_factory("openvino", "fp32").path),
                                 str(photos), "--out", str(out / str(strict)), "--masks", "--overlays", "all",
                                 "--quiet", *(["--strict"] if strict else [])],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == code, result.stderr
    lines = _lines(out / "False")
    assert [line["file"] for line in lines] == [f"part-{i}.png" for i in range(6)]  # none skipped but the broken one
    for line in lines:
        photo = cv2.imread(str(photos / line["file"]))
        mask = cv2.imread(str(out / "False" / "masks" / line["file"]), cv2.IMREAD_UNCHANGED)
        overlay = cv2.imread(str(out / "False" / "overlays" / line["file"].replace(".png", ".jpg")))
        assert mask.shape == photo.shape[:2] and overlay.shape == photo.shape
        for region in line["regions"]:
            x, y, w, h = region["bbox"]
            assert x + w <= photo.shape[1] and y + h <= photo.shape[0]
    assert json.loads((out / "False" / "timing.json").read_text())["bad_frames"] == 1


@pytest.fixture
def small_disk(tmp_path):
    """A 256 kB tmpfs: a disk that fills up mid-run (mounting needs root, as CI runs)."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_loses_writes_not_the_run_nor_a_whole_line(bundle_factory, synth_data, small_disk):
    frames = [cv2.resize(cv2.imread(str(p)), (320, 256)) for p in sorted((synth_data / "images").iterdir())[:8]]
    video = write_video(small_disk.parent / "line.mp4", frames * 10)  # 80 frames, kept off the small disk
    result = subprocess.run([sys.executable, "-m", "edgeseg", "run", str(bundle_factory("onnxruntime", "fp32").path),
                             str(video), "--out", str(small_disk / "out"), "--masks", "--overlays", "all", "--quiet"],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "not written (" in result.stderr
    assert str(small_disk / "out") in result.stderr  # the message names the file
    text = (small_disk / "out" / "results.jsonl").read_bytes().decode()
    assert text.endswith("\n") and all(json.loads(line) for line in text.splitlines())  # whole lines only
    masks = list((small_disk / "out" / "masks").glob("*.png"))
    assert all(path.stat().st_size > 0 and cv2.imread(str(path)) is not None for path in masks)  # none cut
    assert "write(s) lost" in result.stdout


def test_a_killed_runs_overlay_video_plays_up_to_its_last_segment(bundle_factory, tmp_path):
    url = f"udp://127.0.0.1:{free_port()}?pkt_size=1316"
    server = serve_stream(url, seconds=60)
    out_dir = tmp_path / "o"
    run = edgeseg_process("run", bundle_factory("onnxruntime", "fp32").path, url.split("?")[0], "--out", out_dir,
                          "--video", "--video-segment", "0.4", "--quiet")
    try:
        assert wait_for(lambda: len(list((out_dir / "video").glob("*.mp4"))) >= 4, timeout=40)
        run.kill()  # SIGKILL: no chance to close anything
        run.wait(timeout=10)
    finally:
        run.kill()
        stop(server)
    segments = sorted((out_dir / "video").glob("*.mp4"))
    for finished in segments[:-1]:  # every segment but the one being written is a whole video
        probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                                "stream=nb_read_frames", "-of", "csv=p=0", str(finished)],
                               capture_output=True, text=True)
        assert probe.returncode == 0 and int(probe.stdout.strip()) == 10, (finished.name, probe.stderr)
    assert all(json.loads(line) for line in (out_dir / "results.jsonl").read_text().splitlines())


def test_results_are_rotated_by_size_and_age_and_never_truncated(bundle_factory, stream, tmp_path):
    bundle = bundle_factory("onnxruntime", "fp32").path
    video, frames = stream
    old = '{"schema_version": 1, "run": "20261001T000000.000Z", "index": 0}\n'
    (tmp_path / "results.jsonl").write_text(old)  # a file begun long ago: rotated by age before the first line
    _run(bundle, str(video), tmp_path, rotate_mb=0.001, rotate_hours=24)
    files = sorted(tmp_path.glob("results*.jsonl"))
    assert files[0].name == "results-20261001T000000.000Z.jsonl" and files[0].read_text() == old
    assert files[-1].name == "results.jsonl" and len(files) > 3  # several rotations by size, 1 kB each
    lines = [json.loads(line) for path in files[1:-1] + files[-1:] for line in path.read_text().splitlines()]
    assert [line["index"] for line in lines] == list(range(len(frames)))  # every line, in order, once
    assert all(path.stat().st_size < 1024 + 4096 for path in files[1:-1])  # rotated once past 1 kB


def test_archives_keep_their_quota_and_the_newest_files(bundle_factory, stream, tmp_path):
    video, frames = stream
    quota = 0.03  # MB: a fraction of what the run writes
    _run(bundle_factory("onnxruntime", "fp32").path, str(video), tmp_path, masks=True, overlays="all", video=True,
         archive_quota_mb=quota)
    archived = [p for name in ("masks", "overlays", "video") for p in (tmp_path / name).glob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in archived) <= quota * 2**20
    last = f"{len(frames) - 1:08d}"
    assert (tmp_path / "masks" / f"{last}.png").exists() and (tmp_path / "overlays" / f"{last}.jpg").exists()
    assert not (tmp_path / "masks" / "00000000.png").exists()  # the oldest went first
    assert len(_lines(tmp_path)) == len(frames)  # the result lines are not archives: all kept


def test_things_made_per_frame_shape_are_made_once_and_the_least_recently_used_goes():
    from edgeseg.runtime.per_shape import PerShape

    made = []
    per_shape = PerShape(lambda shape: made.append(shape) or len(made), kept=2)
    assert [per_shape(s) for s in ((2, 2), (3, 3), (2, 2))] == [1, 2, 1]  # the same shape: the same thing
    per_shape((4, 4))  # a third shape: (3, 3), the least recently used, goes
    assert per_shape((2, 2)) == 1 and per_shape((3, 3)) == 4 and made == [(2, 2), (3, 3), (4, 4), (3, 3)]
