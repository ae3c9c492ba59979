"""Rectangular inputs: where the photos share one aspect the model takes it (input_size on the
shorter side), and training, export, compile and the runtime carry the non-square size through."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from edgeseg.training.dataset import input_shape


@pytest.mark.parametrize(("photos", "keep", "shape"), [
    ([(320, 480)] * 4, True, (256, 384)),  # CrackForest's landscape photos
    ([(480, 320)] * 4, True, (384, 256)),  # portrait
    ([(1024, 1280), (1030, 1280)], True, (256, 320)),  # within 3 % of one aspect
    ([(320, 480), (480, 320)], True, (256, 256)),  # no one aspect: square
    ([(300, 300), (301, 300)], True, (256, 256)),  # square photos
    ([(320, 480)] * 4, False, (256, 256)),  # asked for square
])
def test_the_input_keeps_the_photos_one_aspect_on_the_stride(photos, keep, shape):
    assert input_shape(256, photos, 32, keep) == shape


@pytest.fixture(scope="module")
def wide_data(synth_data, tmp_path_factory):
    """The synthetic set stretched to 144x96 photos (aspect 1.5)."""
    root = tmp_path_factory.mktemp("wide") / "data"
    shutil.copytree(synth_data, root)
    for folder, interpolation in (("images", cv2.INTER_LINEAR), ("masks", cv2.INTER_NEAREST)):
        for path in (root / folder).iterdir():
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            cv2.imwrite(str(path), cv2.resize(image, (144, 96), interpolation=interpolation))
    return root


def test_a_wide_data_set_trains_exports_and_runs_at_its_own_aspect(wide_data, tmp_path):
    from edgeseg.api import Inspector
    from edgeseg.export.compile import CompileOptions, compile_bundle
    from edgeseg.export.onnx_export import ExportOptions, export_onnx
    from edgeseg.training.checkpoint import load_checkpoint
    from edgeseg.training.config import TrainConfig
    from edgeseg.training.trainer import train

    result = train(TrainConfig(data=str(wide_data), out=str(tmp_path / "run"), input_size=64, epochs=1,
                               batch_size=8, arch_kwargs={"base": 8}, seed=1, calibrate=False), show_progress=False)
    spec = load_checkpoint(result.best_checkpoint)["meta"]["input"]
    assert (spec["height"], spec["width"]) == (64, 96)
    assert result.frame_size_metrics is not None and result.frame_size_metrics["miou"] > 0
    graph = export_onnx(ExportOptions(str(result.best_checkpoint), str(tmp_path / "m.onnx"), data=str(wide_data)),
                        show_progress=False).path
    bundle = compile_bundle(CompileOptions(str(graph), str(tmp_path / "b"), backend="onnxruntime",
                                           data=str(wide_data)), show_progress=False)
    assert bundle.manifest["input"]["shape"][1:3] == [64, 96] and bundle.passed
    frame = cv2.imread(str(next((wide_data / "images").iterdir())), cv2.IMREAD_GRAYSCALE)
    with Inspector(bundle.path) as inspector:
        result_mask = inspector.inspect(frame).mask
    assert result_mask.shape == (96, 144) and result_mask.dtype == np.uint8
    square = train(TrainConfig(data=str(wide_data), out=str(tmp_path / "square"), input_size=64, epochs=1,
                               batch_size=8, arch_kwargs={"base": 8}, seed=1, calibrate=False, keep_aspect=False),
                   show_progress=False)
    assert load_checkpoint(square.best_checkpoint)["meta"]["input"]["height"] == 64
    assert load_checkpoint(square.best_checkpoint)["meta"]["input"]["width"] == 64
