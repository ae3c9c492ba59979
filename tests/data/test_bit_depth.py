"""One bit-depth rule everywhere: 12-bit images stored in 16-bit files are scaled by their
depth in data check, training, export, compile, verify and the runtime, as a Mono12 camera's
frames are, and the depth found in training is recorded in the checkpoint and the bundle."""

from __future__ import annotations

import re
import shutil

import cv2
import numpy as np
import pytest

from edgeseg.data.imageio import data_bit_depth, depth_holding, read_image, scale_to_8bit


@pytest.mark.parametrize(("largest", "depth"), [(255, 10), (1023, 10), (1024, 12), (4095, 12), (4096, 14),
                                                (16383, 14), (65535, 16)])
def test_the_depth_is_the_smallest_that_holds_the_largest_value(largest, depth):
    assert depth_holding(largest) == depth


def test_scaling_takes_full_scale_from_the_depth_and_saturates():
    twelve = np.array([[0, 2048, 4095, 5000]], np.uint16)
    assert scale_to_8bit(twelve, 12).tolist() == [[0, 128, 255, 255]]
    assert scale_to_8bit(twelve, 16).tolist() == [[0, 8, 16, 19]]  # the old rule: 12-bit data as 0-15 levels
    assert scale_to_8bit(twelve, 8).tolist() == scale_to_8bit(twelve, 16).tolist()  # 8-bit model: full range
    assert data_bit_depth([np.zeros((2, 2), np.uint8)]) == 8
    assert data_bit_depth([np.zeros((2, 2), np.uint8), twelve]) == 14  # 5000 needs 13 bits


@pytest.fixture(scope="module")
def twelve_bit_data(synth_data, tmp_path_factory):
    """The synthetic set with every image as 12-bit values in 16-bit PNGs."""
    root = tmp_path_factory.mktemp("twelve") / "data"
    shutil.copytree(synth_data, root)
    for path in sorted((root / "images").iterdir()):
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        path.unlink()
        cv2.imwrite(str(path.with_suffix(".png")), (image.astype(np.uint32) * 4095 // 255).astype(np.uint16))
    return root


def test_twelve_bit_files_train_export_and_run_as_the_camera_gives_them(twelve_bit_data, synth_data, tmp_path):
    from edgeseg.api import Inspector
    from edgeseg.data.check import check_dataset
    from edgeseg.export.compile import CompileOptions, compile_bundle
    from edgeseg.export.onnx_export import ExportOptions, export_onnx
    from edgeseg.training.checkpoint import load_checkpoint
    from edgeseg.training.config import TrainConfig
    from edgeseg.training.trainer import train

    report = check_dataset(twelve_bit_data, show_progress=False)
    assert any(re.search(r"40 16-bit image\(s\), values up to (3\d{3}|40\d\d): taken as 12-bit \(full scale 4095\)", w)
               for w in report.warnings)
    result = train(TrainConfig(data=str(twelve_bit_data), out=str(tmp_path / "run"), input_size=64, epochs=1,
                               batch_size=8, arch_kwargs={"base": 8}, seed=1, calibrate=False), show_progress=False)
    meta = load_checkpoint(result.best_checkpoint)["meta"]
    assert meta["input"]["bit_depth"] == 12
    mean_8bit = np.mean([read_image(p, 1).mean() for p in sorted((synth_data / "images").iterdir())])
    assert abs(meta["normalization"]["mean"][0] * 255 - mean_8bit) < 6  # the full range (0-15 levels: ~9)
    graph = export_onnx(ExportOptions(str(result.best_checkpoint), str(tmp_path / "m.onnx"),
                                      data=str(twelve_bit_data)), show_progress=False).path
    bundle = compile_bundle(CompileOptions(str(graph), str(tmp_path / "b"), backend="onnxruntime",
                                           data=str(twelve_bit_data)), show_progress=False)
    assert bundle.manifest["input"]["bit_depth"] == 12
    stem = sorted((twelve_bit_data / "images").iterdir())[0]
    sixteen = cv2.imread(str(stem), cv2.IMREAD_UNCHANGED)
    eight = read_image(next((synth_data / "images").glob(stem.stem + ".*")), 1)
    with Inspector(bundle.path) as inspector:
        from_file = inspector.inspect(sixteen).mask
        from_8bit = inspector.inspect(eight).mask
    assert (from_file == from_8bit).mean() > 0.99  # a 12-bit frame is the 8-bit frame, to rounding
