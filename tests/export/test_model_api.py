"""OpenVINO Model API reads the IR ``export-serving --to model-api`` writes from a bundle, and its
SegmentationModel's masks agree with ``edgeseg run``'s on the same photos (each at its own size,
so the resize embedded in the IR is exercised). Model API runs in the peers' venv (.ci/run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeseg.engines import open_engine
from edgeseg.engines.bundle import Bundle
from edgeseg.export.serving import ServingOptions, export_serving


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_model_api_gives_the_masks_edgeseg_run_gives(peers_python, bundle_factory, synth_data, tmp_path, precision):
    bundle = bundle_factory("openvino", precision).path
    model_dir = export_serving(ServingOptions(str(bundle), str(tmp_path / "repo"), "model-api", name="parts"))
    images = synth_data / "images"
    ran = subprocess.run([sys.executable, "-m", "edgeseg", "run", str(bundle), str(images), "--masks", "--quiet",
                          "--out", str(tmp_path / "run")], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    env = {**os.environ, "EDGESEG_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([str(peers_python), str(Path(__file__).with_name("model_api_masks.py")),
                           str(model_dir / "model.xml"), str(images), str(tmp_path / "model-api"), "1",
                           Bundle.read(bundle).manifest["engine"]["inference_precision"]],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "SegmentationModel" in done.stdout
    # Model API scales its model-size mask to the photo corner to corner (INTER_NEAREST), edgeseg
    # centre to centre: both are compared with the engine's own model-size mask scaled each way.
    agree = {"edgeseg": 0, "model-api": 0}
    total = 0
    with open_engine(bundle) as engine:
        for ours in sorted((tmp_path / "run" / "masks").glob("*.png")):
            theirs = cv2.imread(str(tmp_path / "model-api" / ours.name), cv2.IMREAD_UNCHANGED)
            mask = cv2.imread(str(ours), cv2.IMREAD_UNCHANGED)
            assert theirs is not None and theirs.shape == mask.shape, ours.name
            model_size = _engine_mask(engine, next(images.glob(ours.stem + ".*")))
            size = (mask.shape[1], mask.shape[0])
            ways = (("edgeseg", mask, cv2.INTER_NEAREST_EXACT), ("model-api", theirs, cv2.INTER_NEAREST))
            for name, got, flag in ways:
                agree[name] += int(np.count_nonzero(got == cv2.resize(model_size, size, interpolation=flag)))
            total += mask.size
    assert total > 0 and min(agree.values()) / total >= 0.999, f"pixels that agree: {agree} of {total}"


def _engine_mask(engine, path: Path) -> np.ndarray:
    """The engine's class ids for one grayscale photo at the model's input size, done by hand."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    size = (engine.spec.width, engine.spec.height)
    engine.input[0, :, :, 0] = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    engine.infer()
    return engine.mask[0].copy()


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_a_bundles_own_ir_carries_model_apis_model_info(bundle_factory, synth_data, precision):
    import openvino as ov

    bundle = bundle_factory("openvino", precision).path
    model = ov.Core().read_model(str(bundle / "model.xml"))

    def info(key: str) -> str:
        return str(model.get_rt_info(["model_info", key]).astype(str))

    names = [line.split(",")[1] for line in (synth_data / "classes.csv").read_text().split()[1:]]
    assert info("model_type") == "Segmentation" and info("labels").split() == names
    assert (info("orig_height"), info("orig_width")) == ("64", "64")


def test_export_serving_tells_the_precision_the_bundle_was_proven_at(bundle_factory, tmp_path):
    bundle = bundle_factory("openvino", "fp32").path
    done = subprocess.run([sys.executable, "-m", "edgeseg", "export-serving", str(bundle), "--to", "model-api",
                           "-o", str(tmp_path / "repo"), "--name", "parts"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "repo" / "parts" / "model.xml").is_file()
    assert "plugin_config={'INFERENCE_PRECISION_HINT': 'f32'}" in done.stdout
