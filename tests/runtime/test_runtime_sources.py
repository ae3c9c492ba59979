"""Frame sources and the capture ring: files, folders, network streams served by ffmpeg, the pylon
camera emulator, the drop policy, and sources that fail and come back."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest
from media import free_port, numbered_frames, serve_stream, stop, wait_for, write_video

from edgeseg.errors import SourceError
from edgeseg.runtime.capture import Capture
from edgeseg.runtime.sources import BadFrame, FrameLost, FrameSource, open_source
from edgeseg.runtime.sources.base import as_frame
from edgeseg.runtime.sources.gstreamer import GStreamerSource, jetson_csi_pipeline
from edgeseg.runtime.sources.image_folder import ImageFolderSource
from edgeseg.runtime.sources.memory import MemorySource
from edgeseg.runtime.sources.pylon import PylonSource
from edgeseg.runtime.sources.usb import UsbCameraSource
from edgeseg.runtime.sources.video import NetworkStreamSource, VideoFileSource


def _drain(capture: Capture, delay: float = 0.0) -> list[tuple[int, np.ndarray]]:
    got = []
    while (slot := capture.take()) is not None:
        got.append((int(capture.index[slot]), capture.frames[slot].copy()))
        time.sleep(delay)
        capture.release(slot)
    return got


@pytest.mark.parametrize("uri, kind", [
    ("clip.mp4", VideoFileSource), ("usb:0", UsbCameraSource), ("/dev/video2", UsbCameraSource),
    ("v4l2:///dev/video0", UsbCameraSource), ("rtsp://10.0.0.5:554/stream", NetworkStreamSource),
    ("udp://127.0.0.1:5000", NetworkStreamSource), ("http://cam/mjpg", NetworkStreamSource),
    ("gst:videotestsrc ! videoconvert ! appsink", GStreamerSource), ("csi://0", GStreamerSource),
    ("pylon://", PylonSource), ("pylon://40012345?pixel_format=Mono12", PylonSource)])
def test_a_uri_picks_its_source(uri, kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clip.mp4").write_bytes(b"")
    assert type(open_source(uri)) is kind


def test_folders_and_globs_are_image_sources_and_unknown_ones_are_refused(tmp_path):
    assert isinstance(open_source(str(tmp_path)), ImageFolderSource)
    assert isinstance(open_source(str(tmp_path / "*.png")), ImageFolderSource)
    with pytest.raises(SourceError, match="no such file"):
        open_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(SourceError, match="unknown source"):
        open_source("ftp://host/x")
    with pytest.raises(SourceError, match="names no camera"):
        open_source("usb:first")


def test_pylon_uri_names_serial_and_pixel_format():
    source = open_source("pylon://40012345?pixel_format=Mono12")
    assert (source.serial, source.pixel_format) == ("40012345", "Mono12")
    assert open_source("pylon://").serial is None


def test_a_video_file_gives_every_frame_in_order_and_ends_cleanly(tmp_path):
    path = write_video(tmp_path / "clip.mp4", numbered_frames(24))
    capture = Capture(VideoFileSource(str(path)), slots=3)
    capture.start()
    got = _drain(capture, delay=0.005)  # a slow loop: a file still drops nothing
    capture.stop()
    assert [i for i, _ in got] == list(range(24))
    assert [round(float(f.mean()) / 10) for _, f in got] == list(range(24))  # the frames, in order
    assert (capture.dropped, capture.bad, capture.state) == (0, 0, "ended")
    assert got[0][1].shape == (64, 80, 3) and got[0][1].flags.c_contiguous


def test_a_truncated_video_ends_with_the_frames_it_has(tmp_path):
    path = write_video(tmp_path / "clip.avi", numbered_frames(40), fourcc="MJPG")
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    capture = Capture(VideoFileSource(str(path)), slots=3)
    capture.start()
    got = _drain(capture)
    capture.stop()
    assert 5 < len(got) < 40
    assert [i for i, _ in got] == list(range(len(got)))


def test_a_corrupt_frame_in_a_video_is_skipped_and_counted_and_the_rest_kept(tmp_path):
    path = write_video(tmp_path / "clip.avi", numbered_frames(30), fourcc="MJPG")
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]  # JPEG starts
    data[starts[15]:starts[15] + 300] = bytes(300)  # frame 15 loses its header
    path.write_bytes(bytes(data))
    capture = Capture(VideoFileSource(str(path)), slots=3)
    capture.start()
    got = _drain(capture)
    capture.stop()
    assert capture.bad == 1
    indexes, contents = [i for i, _ in got], [round(float(f.mean()) / 10) for _, f in got]
    assert indexes[:15] == contents[:15] == list(range(15))
    assert 15 not in indexes and indexes == sorted(indexes)  # the skipped frame leaves a gap
    # the rest is kept (OpenCV's FFmpeg reader may lose the one frame right after a corrupt one)
    assert contents[15:] in (list(range(16, 25)) + list(range(5)), list(range(17, 25)) + list(range(5)))


def test_an_unreadable_video_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"not a video at all" * 100)
    with pytest.raises(SourceError, match="cannot open"):
        Capture(VideoFileSource(str(path))).start()


def test_an_image_folder_skips_and_counts_unreadable_images_and_takes_each_at_its_own_size(tmp_path):
    for i in range(5):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), np.full((32, 40), i * 40, np.uint8))
    (tmp_path / "02b.png").write_bytes(b"\x89PNG garbage")  # corrupt
    cv2.imwrite(str(tmp_path / "03b.jpg"), np.zeros((32, 40), np.uint8))
    (tmp_path / "03b.jpg").write_bytes((tmp_path / "03b.jpg").read_bytes()[:-40])  # truncated
    cv2.imwrite(str(tmp_path / "03c.png"), np.full((16, 16, 3), 7, np.uint8))  # another size and colour
    capture = Capture(ImageFolderSource(str(tmp_path)), slots=2)
    capture.start()
    got = _drain(capture)
    capture.stop()
    assert [int(f[0, 0].flat[0]) for _, f in got] == [0, 40, 80, 120, 7, 160]  # as they come, name order
    assert [f.shape for _, f in got] == [(32, 40)] * 4 + [(16, 16, 3), (32, 40)]
    assert capture.bad == 2
    fixed = Capture(ImageFolderSource(str(tmp_path)), slots=2, fixed_shape=True)  # as tile mode takes them
    fixed.start()
    assert [f.shape for _, f in _drain(fixed)] == [(32, 40)] * 5 and fixed.bad == 3
    fixed.stop()


def test_a_glob_picks_its_images(tmp_path):
    for name in ("a1.png", "a2.png", "b1.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8, 3), np.uint8))
    source = ImageFolderSource(str(tmp_path / "a*.png"))
    source.open()
    assert [p.name for p in source.paths] == ["a1.png", "a2.png"]
    with pytest.raises(SourceError, match="no images"):
        ImageFolderSource(str(tmp_path / "c*.png")).open()


def test_frames_are_taken_as_they_come_and_16_bit_mono_is_scaled():
    mono = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = np.empty((3, 4), np.uint8)
    assert as_frame(mono, out) is out and np.array_equal(out, mono)
    twelve_bit = np.full((3, 4), 4095, np.uint16)
    twelve_bit[0, 0] = 0
    scaled = as_frame(twelve_bit, out, bit_depth=12)
    assert scaled is out and out[1, 1] == 255 and out[0, 0] == 0
    bgra = np.zeros((3, 4, 4), np.uint8)
    assert as_frame(bgra, None).shape == (3, 4, 3)
    with pytest.raises(BadFrame, match="dtype float32"):
        as_frame(np.zeros((3, 4), np.float32), None)
    with pytest.raises(BadFrame, match="neither mono nor"):
        as_frame(np.zeros((3, 4, 2), np.uint8), None)
    other = as_frame(np.full((4, 4), 9, np.uint8), out)  # another size: a buffer of its own
    assert other is not out and other.shape == (4, 4) and int(other[0, 0]) == 9


class CountingCamera(FrameSource):
    """A live source that makes numbered frames as fast as asked; it can fail and refuse reopening."""

    live = True

    def __init__(self, fail_after: int | None = None, refuse_opens: int = 0, interval: float = 0.0):
        super().__init__("test://camera")
        self.number = 0
        self.fail_after, self.refuse_opens, self.interval = fail_after, refuse_opens, interval
        self.opens = 0

    def open(self) -> None:
        self.opens += 1
        if 1 < self.opens <= 1 + self.refuse_opens:
            raise SourceError("camera not there yet")

    def read(self, out):
        if self.fail_after is not None and self.number == self.fail_after:
            self.fail_after = None
            raise FrameLost("cable pulled")
        time.sleep(self.interval)
        frame = np.full((4, 4), self.number % 256, np.uint8)
        self.number += 1
        return as_frame(frame, out)


class LendingCamera(FrameSource):
    """A source with a pool of its own buffers that it lends: numbered frames, and every 7th one
    of another size (a frame the ring cannot hold). It records what is out on loan."""

    lends = True

    def __init__(self, frames: int, live: bool = False, interval: float = 0.0):
        super().__init__("test://lending")
        self.live, self.frames, self.interval = live, frames, interval
        self.number = 0
        self.out_on_loan: set[int] = set()
        self.most_on_loan = self.given_back = 0
        self.lock = threading.Lock()

    def open(self) -> None:
        pass

    def read(self, out):
        raise AssertionError("a lending source is not copied from")

    def lend(self):
        if self.number == self.frames:
            return None
        time.sleep(self.interval)
        number, self.number = self.number, self.number + 1
        shape = (5, 4) if number % 7 == 6 else (4, 4)
        with self.lock:
            self.out_on_loan.add(number)
            self.most_on_loan = max(self.most_on_loan, len(self.out_on_loan))
        return np.full(shape, number, np.uint8), number

    def give_back(self, token):
        with self.lock:
            self.out_on_loan.remove(token)  # a token given back twice fails here
            self.given_back += 1


@pytest.mark.parametrize("fixed_shape", [False, True])
def test_a_source_that_lends_its_buffers_is_not_copied_and_gets_every_one_back(fixed_shape):
    camera = LendingCamera(frames=40)
    capture = Capture(camera, slots=3, fixed_shape=fixed_shape)
    capture.start()
    taken = []
    while (slot := capture.take()) is not None:
        frame = capture.frames[slot]
        taken.append(int(frame[0, 0]))
        assert int(frame[0, 0]) in camera.out_on_loan  # the lent buffer itself
        assert frame.shape == ((5, 4) if frame[0, 0] % 7 == 6 else (4, 4))
        capture.release(slot)
    capture.stop()
    odd = [n for n in range(40) if n % 7 == 6]
    assert taken == [n for n in range(40) if not fixed_shape or n not in odd]
    assert capture.bad == (len(odd) if fixed_shape else 0)  # a fixed ring skips them and gives them back at once
    assert camera.out_on_loan == set() and camera.given_back == 40
    assert camera.most_on_loan <= capture.slot_count


def test_a_live_lending_source_gets_the_frames_it_dropped_back():
    camera = LendingCamera(frames=400, live=True, interval=0.0005)
    capture = Capture(camera, slots=3)
    capture.start()
    for _ in range(10):
        slot = capture.take()
        time.sleep(0.01)  # a slow loop: older frames are dropped
        capture.release(slot)
    capture.stop()
    assert capture.dropped > 20
    assert camera.out_on_loan == set() and camera.most_on_loan <= capture.slot_count


def test_frames_in_memory_are_lent_to_the_ring_unless_they_need_converting():
    frames = [np.full((4, 6), i, np.uint8) for i in range(3)]
    lent = Capture(MemorySource(frames, count=5), slots=2)
    lent.start()
    seen = []
    while (slot := lent.take()) is not None:
        seen.append(next(i for i, f in enumerate(frames) if lent.frames[slot] is f))
        lent.release(slot)
    lent.stop()
    assert seen == [0, 1, 2, 0, 1]
    sixteen_bit = MemorySource([np.full((4, 6), 4095, np.uint16)], count=1)
    assert not sixteen_bit.lends  # scaled to 8 bits into the ring's own buffer
    copied = Capture(MemorySource(frames, count=2), slots=2, borrow=False)
    copied.start()
    slot = copied.take()
    assert copied.frames[slot] is not frames[0] and np.array_equal(copied.frames[slot], frames[0])
    copied.stop()


def test_a_live_source_keeps_only_the_newest_frame_and_counts_the_dropped():
    capture = Capture(CountingCamera(interval=0.001), slots=3)
    capture.start()
    taken = []
    while len(taken) < 15:
        slot = capture.take()
        taken.append(int(capture.index[slot]))
        time.sleep(0.02)  # a slow loop: the camera runs ahead
        capture.release(slot)
    capture.stop()
    assert taken == sorted(taken) and len(set(taken)) == len(taken)
    assert capture.dropped > 50
    gaps = np.diff(taken)
    assert np.median(gaps) > 5  # frames in between were dropped, not queued
    # every captured frame was either taken, dropped, or is still in the ring
    assert capture.captured - len(taken) - capture.dropped <= capture.slot_count


def test_a_live_source_that_drops_is_reopened_with_backoff():
    camera = CountingCamera(fail_after=5, refuse_opens=2)
    capture = Capture(camera, slots=3, backoff=(0.01, 0.05))
    capture.start()
    indexes = []
    while len(indexes) < 20:
        slot = capture.take()
        indexes.append(int(capture.index[slot]))
        capture.release(slot)
        time.sleep(0.002)
    capture.stop()
    assert capture.reconnects == 1
    assert camera.opens == 4  # the first open, two refused, the one that worked
    assert indexes == sorted(indexes)


def test_a_live_source_gone_for_good_ends_with_a_clear_error():
    capture = Capture(CountingCamera(fail_after=3, refuse_opens=10 ** 6), slots=3, backoff=(0.01, 0.02),
                      give_up_after=0.2)
    capture.start()
    with pytest.raises(SourceError, match="gone for 0.2 s"):
        while True:
            slot = capture.take()
            capture.release(slot)
    capture.stop()


def test_an_udp_stream_served_by_ffmpeg_is_read_live():
    port = free_port()
    server = serve_stream(f"udp://127.0.0.1:{port}?pkt_size=1316", seconds=30)
    try:
        capture = Capture(NetworkStreamSource(f"udp://127.0.0.1:{port}"), slots=3)
        capture.start()
        frames = []
        while len(frames) < 25:
            slot = capture.take()
            frames.append(capture.frames[slot].shape)
            capture.release(slot)
        capture.stop()
    finally:
        stop(server)
    assert set(frames) == {(128, 160, 3)}
    assert capture.live and capture.bad == 0


def test_a_stream_that_dies_and_comes_back_is_reconnected():
    port = free_port()
    url = f"http://127.0.0.1:{port}/live.ts"
    server = serve_stream(url, seconds=60)
    capture = None
    try:
        time.sleep(0.3)
        capture = Capture(NetworkStreamSource(url), slots=3, backoff=(0.1, 0.5))
        capture.start()
        seen = []
        consumer_stop = threading.Event()

        def consume():
            while not consumer_stop.is_set() and (slot := capture.take()) is not None:
                seen.append(int(capture.index[slot]))
                capture.release(slot)

        thread = threading.Thread(target=consume, daemon=True)
        thread.start()
        assert wait_for(lambda: len(seen) >= 10)
        stop(server)  # the camera goes away
        assert wait_for(lambda: capture.state == "reconnecting", timeout=15)
        before = len(seen)
        time.sleep(0.5)
        server = serve_stream(url, seconds=60)  # and comes back
        assert wait_for(lambda: capture.reconnects == 1 and len(seen) >= before + 10, timeout=30)
        consumer_stop.set()
    finally:
        if capture is not None:
            capture.stop()
        stop(server)
    assert seen == sorted(seen)


def test_an_address_nobody_serves_is_waited_for_then_a_clear_error():
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"has not come up in 1 s \(cannot open the source"):
        Capture(NetworkStreamSource(f"http://127.0.0.1:{free_port()}/none.ts"), give_up_after=1).start()
    assert time.monotonic() - started < 5


def test_a_camera_down_at_start_is_waited_for_and_picked_up_when_it_comes():
    port = free_port()
    url = f"udp://127.0.0.1:{port}?pkt_size=1316"
    capture = Capture(NetworkStreamSource(url), backoff=(0.25, 1.0))
    server = threading.Timer(2.0, lambda: servers.append(serve_stream(url, seconds=20)))
    servers: list = []
    server.start()
    try:
        capture.start()  # blocks until the stream is there
        slot = capture.take()
        assert slot is not None and capture.frames[slot].shape[:2] == (128, 160)
        capture.release(slot)
    finally:
        capture.stop()
        server.join()
        for process in servers:
            stop(process)


def test_a_stop_request_ends_the_wait_for_a_source_that_is_down():
    stopping = threading.Event()
    threading.Timer(0.5, stopping.set).start()
    started = time.monotonic()
    with pytest.raises(SourceError, match="stopped while waiting for the source"):
        Capture(NetworkStreamSource(f"http://127.0.0.1:{free_port()}/none.ts")).start(stopping)
    assert time.monotonic() - started < 5  # refused at once, then the wait between tries is cut short


def test_the_pylon_camera_emulator_gives_mono_frames_lent_from_pylons_buffers(monkeypatch):
    """Mono8 as it comes, in pylon's own buffers; with the ring holding more frames than pylon's
    default 10 buffers, pylon is given more and keeps grabbing."""
    monkeypatch.setenv("PYLON_CAMEMU", "1")
    source = open_source("pylon://")
    capture = Capture(source, slots=12)
    capture.start()
    shapes = []
    try:
        for _ in range(30):
            slot = capture.take()
            frame = capture.frames[slot]
            shapes.append((frame.shape, frame.dtype))
            assert not frame.flags.owndata  # a view of pylon's buffer, not the ring's own array
            capture.release(slot)
        assert capture.lending and source.camera.MaxNumBuffer.GetValue() >= 12
        assert capture.reconnects == 0  # pylon never ran out of buffers to grab into
    finally:
        capture.stop()
    assert len(set(shapes)) == 1
    shape, dtype = shapes[0]
    assert len(shape) == 2 and dtype == np.uint8  # Mono8, used as it comes


_PYLON_REOPEN_PROBE = """
import gc
import numpy as np
from edgeseg.runtime.sources import open_source
source = open_source("pylon://")
source.lend_up_to(3)
source.open()
frame, token = source.lend()
kept = frame.copy()
source.close()  # as a reconnect does, while the ring still holds the frame
gc.collect()
source.open()
again, token2 = source.lend()
assert np.array_equal(frame, kept), "the lent frame changed"
source.give_back(token)
source.give_back(token2)
source.close()
print("ok")
"""


def test_a_frame_lent_by_pylon_stays_valid_when_the_camera_is_closed_and_reopened(monkeypatch):
    """In its own process: reading a freed pylon buffer would crash it."""
    monkeypatch.setenv("PYLON_CAMEMU", "1")
    out = subprocess.run([sys.executable, "-c", _PYLON_REOPEN_PROBE], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_the_pylon_emulator_at_12_bits_is_scaled_to_8(monkeypatch):
    monkeypatch.setenv("PYLON_CAMEMU", "1")
    source = open_source("pylon://?pixel_format=Mono12")
    capture = Capture(source, slots=2)
    capture.start()
    slot = capture.take()
    frame = capture.frames[slot].copy()
    capture.release(slot)
    capture.stop()
    assert source.bit_depth == 12 and frame.dtype == np.uint8 and frame.ndim == 2 and not capture.lending
    assert frame.max() > 128  # scaled by 255/4095, not cut to the low byte or shifted by 8


def test_a_pylon_serial_that_is_not_there_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PYLON_CAMEMU", "1")
    with pytest.raises(SourceError, match="no Basler camera with serial 99999999"):
        open_source("pylon://99999999").open()


def test_the_jetson_csi_pipeline_and_gstreamer_without_support():
    pipeline = jetson_csi_pipeline(sensor_id=1, width=1280, height=720, fps=60, flip=2)
    assert pipeline.startswith("nvarguscamerasrc sensor-id=1 ! ")
    assert "width=1280, height=720, framerate=60/1" in pipeline and "flip-method=2" in pipeline
    assert pipeline.endswith("appsink drop=true max-buffers=1 sync=false")
    assert open_source("csi://1", width=1280, height=720, fps=60).target.startswith("nvarguscamerasrc sensor-id=1")
    source = open_source("gst:videotestsrc ! appsink")
    assert source.target == "videotestsrc ! appsink"
    # the PyPI OpenCV wheels have no GStreamer: that is said, not a silent failure
    with pytest.raises(SourceError, match="without GStreamer"):
        source.open()


def test_paths_with_brackets_are_taken_as_named_not_as_patterns(tmp_path):
    folder = tmp_path / "cam[1]"
    folder.mkdir()
    frames = numbered_frames(3)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i}.png"), frame)
    video = write_video(tmp_path / "line[2].mp4", numbered_frames(5))
    for uri, kind, count in ((str(folder), ImageFolderSource, 3), (str(video), VideoFileSource, 5)):
        source = open_source(uri)
        assert isinstance(source, kind)
        capture = Capture(source)
        capture.start()
        assert len(_drain(capture)) == count
        capture.stop()
    assert isinstance(open_source(str(tmp_path / "cam[[]1]" / "*.png")), ImageFolderSource)  # a pattern still is one


def test_credentials_in_an_address_are_never_printed_or_stored(tmp_path):
    from edgeseg.errors import redact

    secret = "rtsp://operator:s3cr3t@127.0.0.1:9/line1?token=abc&fps=5"
    assert redact(secret) == "rtsp://***@127.0.0.1:9/line1?token=***&fps=5"
    assert redact("rtsp://host/stream") == "rtsp://host/stream"
    source = open_source(secret)
    assert "s3cr3t" not in source.name and "abc" not in repr(source)
    with pytest.raises(SourceError) as refused:
        source.open()
    shown = str(refused.value)
    assert "s3cr3t" not in shown and "abc" not in shown and "rtsp://***@127.0.0.1:9/line1" in shown
    assert str(SourceError("gone", "rtsp://host")) == "rtsp://host: gone"  # not rtsp:/host, as a path would
