"""The Python API as a user calls it: ``import edgeseg`` and nothing else."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest


def _frames(synth_data, count=6, size=(120, 100)):
    """Photos of the synthetic set at one size (a stream's frames share one; issue 20 lifts that)."""
    import cv2

    paths = sorted((synth_data / "images").iterdir())[:count]
    return [cv2.resize(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), size) for path in paths]


class _Collect:
    """A sink of the user's own: the verdict and region count of every frame."""

    def __init__(self):
        import edgeseg

        class Collect(edgeseg.Sink):
            def __init__(self):
                self.seen = []

            def write(self, result):
                self.seen.append((result.inspection.verdict.passed, len(result.inspection.regions)))

        self.sink = Collect()


def test_an_inspector_gives_frame_size_results_that_match_edgeseg_runs_loop(bundle_factory, synth_data):
    import edgeseg

    bundle = bundle_factory("openvino", "fp32").path
    frames = _frames(synth_data)
    with edgeseg.Inspector(bundle) as inspector:
        results = [inspector.inspect(frame) for frame in frames]
    for frame, result in zip(frames, results, strict=True):
        assert result.mask.shape == frame.shape[:2] and result.mask.dtype == np.uint8
        assert result.confidence is not None and result.confidence.shape == frame.shape[:2]
        assert result.passed == (not result.regions)  # the default rules: any defect region fails
    collect = _Collect()
    from edgeseg.runtime.sources.memory import MemorySource

    with edgeseg.InspectionSession(edgeseg.RunOptions(bundle, MemorySource(frames, len(frames)),
                                                      status=False)) as session:
        session.sinks.append(collect.sink)  # a sink added to the session is written to
        session.run()
    assert collect.sink.seen == [(r.passed, len(r.regions)) for r in results]
    assert any(not r.passed for r in results)  # the comparison is not only of empty results


def test_an_inspector_takes_frames_of_several_sizes_and_keeps_each_results_own(bundle_factory, synth_data):
    import edgeseg

    frame = _frames(synth_data, 1)[0]
    with edgeseg.Inspector(bundle_factory("onnxruntime", "fp32").path) as inspector:
        small = inspector.inspect(frame)
        large = inspector.inspect(np.kron(frame, np.ones((2, 2), np.uint8)))  # the same image at twice the side
        again = inspector.inspect(frame)
    assert small.mask.shape == frame.shape and large.mask.shape == (2 * frame.shape[0], 2 * frame.shape[1])
    assert np.array_equal(small.mask, again.mask)  # the first result was not overwritten by the later ones
    assert small.mask is not again.mask


def test_an_inspector_refuses_a_frame_it_cannot_read_in_one_line(bundle_factory):
    import edgeseg

    with edgeseg.Inspector(bundle_factory("onnxruntime", "fp32").path) as inspector:
        with pytest.raises(edgeseg.EdgesegError, match="cannot inspect this frame: frames of dtype float32"):
            inspector.inspect(np.zeros((32, 32), np.float32))


def test_rules_can_be_given_as_a_mapping(bundle_factory, synth_data):
    import edgeseg

    frames = _frames(synth_data)
    with edgeseg.Inspector(bundle_factory("onnxruntime", "fp32").path,
                           rules={"rules": [{"class": "any", "max_total_area": 10**9}]}) as inspector:
        assert all(inspector.inspect(frame).passed for frame in frames)


def test_a_loop_runs_again_after_it_was_stopped(bundle_factory, synth_data):
    import edgeseg
    from edgeseg.runtime.sources.memory import MemorySource

    frames = _frames(synth_data)
    options = edgeseg.RunOptions(bundle_factory("openvino", "fp32").path, MemorySource(frames, 40), throughput=True,
                                 status=False)
    with edgeseg.InspectionSession(options) as session:
        session.loop.on_frame = session.loop.stop
        first = session.loop.run()
        session.loop.on_frame = None
        second = session.loop.run(max_frames=first.frames + 10)  # the loop counts frames over its runs
    assert first.ended_by == "stop request" and second.ended_by == "max frames"
    assert second.frames == first.frames + 10


def test_importing_edgeseg_stays_light_and_names_what_it_offers():
    code = ("import sys, edgeseg\n"
            "assert 'edgeseg.api' not in sys.modules and 'cv2' not in sys.modules\n"
            "assert edgeseg.Inspector.__name__ == 'Inspector'\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    import edgeseg

    assert set(edgeseg.__all__) == {"__version__", *edgeseg._EXPORTS}
    assert all(getattr(edgeseg, name) is not None for name in edgeseg.__all__)
    with pytest.raises(AttributeError, match="no attribute 'Inspektor'"):
        edgeseg.Inspektor  # noqa: B018
