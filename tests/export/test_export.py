import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgeseg.cli.train_cmd import RECIPE
from edgeseg.errors import ConfigError, ExportError
from edgeseg.export.onnx_export import ExportOptions, export_onnx
from edgeseg.training.checkpoint import load_checkpoint, model_from_checkpoint
from edgeseg.training.config import TrainConfig


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "model.onnx"
    return export_onnx(ExportOptions(checkpoint=str(trained_run.best_checkpoint), output=str(out)),
                       show_progress=False)


def test_graph_takes_uint8_nhwc_and_returns_uint8_mask_and_confidence(exported):
    session = ort.InferenceSession(str(exported.path))
    (inp,) = session.get_inputs()
    assert inp.type == "tensor(uint8)" and inp.shape == [1, 64, 64, 1]
    outs = {o.name: o for o in session.get_outputs()}
    assert outs["mask"].type == "tensor(uint8)" and outs["mask"].shape == [1, 64, 64]
    assert outs["confidence"].type == "tensor(float)"
    frame = np.random.default_rng(0).integers(0, 255, (1, 64, 64, 1), np.uint8)
    mask, conf = session.run(None, {"frames": frame})
    assert mask.max() < 5 and ((conf > 0.19) & (conf <= 1.0 + 1e-6)).all()


def test_mask_matches_pytorch_with_normalisation_folded_in(exported, trained_run):
    state = load_checkpoint(trained_run.best_checkpoint)
    model = model_from_checkpoint(state)
    norm = state["meta"]["normalization"]
    frame = np.random.default_rng(1).integers(0, 255, (1, 64, 64, 1), np.uint8)
    x = (torch.from_numpy(frame).permute(0, 3, 1, 2).float() / 255 - norm["mean"][0]) / norm["std"][0]
    with torch.no_grad():
        expected = model(x).argmax(1).numpy().astype(np.uint8)
    mask = ort.InferenceSession(str(exported.path)).run(["mask"], {"frames": frame})[0]
    assert (mask == expected).mean() > 0.999


def test_parity_is_measured_on_real_images(exported):
    assert exported.parity.images == 8  # the synthetic val split
    assert exported.parity.pixel_agreement >= 0.999
    assert exported.parity.exported["miou"] == pytest.approx(exported.parity.reference["miou"], abs=0.01)


def test_metadata_describes_classes_and_input(exported):
    model = onnx.load(str(exported.path))
    props = {p.key: p.value for p in model.metadata_props}
    assert [c["name"] for c in json.loads(props["edgeseg.classes"])][1] == "pit"
    spec = json.loads(props["edgeseg.input"])
    assert spec["layout"] == "NHWC" and spec["dtype"] == "uint8" and spec["color_order"] == "gray"
    onnx.checker.check_model(model, full_check=True)


def test_dynamic_export_runs_at_other_sizes(trained_run, tmp_path):
    result = export_onnx(ExportOptions(checkpoint=str(trained_run.best_checkpoint), output=str(tmp_path / "d.onnx"),
                                       dynamic=True, confidence=False, parity_images=2), show_progress=False)
    session = ort.InferenceSession(str(result.path))
    (mask,) = session.run(None, {"frames": np.zeros((2, 96, 128, 1), np.uint8)})
    assert mask.shape == (2, 96, 128) and mask.dtype == np.uint8


def test_failed_parity_writes_nothing(trained_run, tmp_path):
    out = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match="agrees with PyTorch"):
        export_onnx(ExportOptions(checkpoint=str(trained_run.best_checkpoint), output=str(out),
                                  parity_images=2, min_agreement=1.01), show_progress=False)
    assert list(tmp_path.iterdir()) == []


def test_colour_order_must_fit_the_model(trained_run, tmp_path):
    with pytest.raises(ConfigError, match="input order"):
        export_onnx(ExportOptions(checkpoint=str(trained_run.best_checkpoint), output=str(tmp_path / "m.onnx"),
                                  input_order="rgb"), show_progress=False)
    with pytest.raises(ConfigError, match="stride"):
        export_onnx(ExportOptions(checkpoint=str(trained_run.best_checkpoint), output=str(tmp_path / "m.onnx"),
                                  height=70), show_progress=False)


def test_rgb_camera_frames_are_reordered_for_a_bgr_model():
    from edgeseg.export.deploy_graph import DeployGraph
    from edgeseg.models import build_model

    torch.manual_seed(0)
    model = build_model("mobile-lraspp", 3, 4).eval()
    mean, std = [0.2, 0.4, 0.6], [0.2, 0.25, 0.3]
    bgr_graph = DeployGraph(model, mean, std, "bgr", "bgr", confidence=True).eval()
    rgb_graph = DeployGraph(model, mean, std, "bgr", "rgb", confidence=True).eval()
    frame = torch.randint(0, 255, (1, 64, 64, 3), dtype=torch.uint8)
    with torch.no_grad():
        _, conf_bgr = bgr_graph(frame)
        _, conf_rgb = rgb_graph(frame.flip(-1))
        _, conf_wrong = bgr_graph(frame.flip(-1))
    assert torch.allclose(conf_bgr, conf_rgb)
    assert not torch.allclose(conf_bgr, conf_wrong)


def test_static_batch_export_measures_parity_per_frame(trained_run, tmp_path):
    result = export_onnx(ExportOptions(checkpoint=str(trained_run.best_checkpoint), output=str(tmp_path / "b.onnx"),
                                       batch=2, parity_images=3), show_progress=False)
    (inp,) = ort.InferenceSession(str(result.path)).get_inputs()
    assert inp.shape == [2, 64, 64, 1]
    assert result.parity.images == 3 and result.parity.pixel_agreement >= 0.999


LEAN = TrainConfig.from_yaml(RECIPE).arch_kwargs  # the recipe's lean mobile-lraspp


@pytest.mark.parametrize("arch_kwargs", [{"fine_detail": True}, LEAN, {**LEAN, "stem_detail": True}],
                         ids=["small", "lean", "lean-stem"])
def test_lighter_model_with_fine_detail_exports_with_parity(synth_data, tmp_path, arch_kwargs):
    """The mobile-lraspp graph (its classifiers summed at two or three resolutions) through the whole
    export: trained briefly, calibrated, exported, and checked against PyTorch on real images."""
    from edgeseg.training.trainer import train

    run = train(TrainConfig(data=str(synth_data), out=str(tmp_path / "run"), arch="mobile-lraspp",
                            arch_kwargs=arch_kwargs, input_size=64, epochs=1, batch_size=8, seed=2),
                show_progress=False)
    state = load_checkpoint(run.best_checkpoint)
    assert state["meta"]["arch_kwargs"] == arch_kwargs
    assert "classify_fine.weight" in state["model"]
    assert ("classify_stem.weight" in state["model"]) == arch_kwargs.get("stem_detail", False)
    result = export_onnx(ExportOptions(checkpoint=str(run.best_checkpoint), output=str(tmp_path / "m.onnx"),
                                       parity_images=4), show_progress=False)
    assert result.parity.images == 4 and result.parity.pixel_agreement >= 0.999
    (inp,) = ort.InferenceSession(str(result.path)).get_inputs()
    assert inp.shape == [1, 64, 64, 1]


def test_parity_images_are_spread_over_the_split(magnetic_tile):
    """magnetic-tile's val list starts with 174 defect-free photos: the first 12 would hold no defect."""
    from edgeseg.export.parity import parity_samples

    classes = set()
    for _, truth in parity_samples(magnetic_tile, "val", 1, 64, 64, limit=12):
        classes.update(np.unique(truth).tolist())
    assert {1, 2, 3, 5} <= classes  # blowhole, break, crack, uneven (fray has 2 val photos)
