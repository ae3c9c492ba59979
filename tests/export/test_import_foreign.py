"""``edgeseg import``: graphs built here with plain torch layers in the layouts other tools export
(NCHW RGB with ImageNet mean/std and logits at a quarter of the input; NHWC BGR 0-255 with a
dynamic size; one sigmoid channel for two classes; class ids already argmax'ed; an old opset),
wrapped, then compiled for OpenVINO and ONNX Runtime, verified and run like edgeseg's own."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import onnx
import pytest
import torch
from torch import nn

from edgeseg.data.classes import ClassInfo, ClassTable
from edgeseg.errors import ConfigError, ExportError
from edgeseg.export.compile import CompileOptions, compile_bundle
from edgeseg.export.foreign import ImportOptions, import_foreign

SIZE = 64


class Foreign(nn.Module):
    """A small segmentation net; ``stride`` is how much smaller its logits are than its input."""

    def __init__(self, channels: int, classes: int, stride: int = 1, nhwc: bool = False, argmax: bool = False):
        super().__init__()
        torch.manual_seed(7)
        layers, width = [], channels
        for _ in range({1: 1, 2: 1, 4: 2}[stride]):
            layers += [nn.Conv2d(width, 8, 3, stride=2 if stride > 1 else 1, padding=1), nn.ReLU()]
            width = 8
        self.body = nn.Sequential(*layers, nn.Conv2d(width, classes, 1))
        self.nhwc, self.argmax = nhwc, argmax

    def forward(self, x):
        logits = self.body(x.permute(0, 3, 1, 2) if self.nhwc else x)
        if self.argmax:
            return logits.argmax(1)
        return logits.permute(0, 2, 3, 1) if self.nhwc else logits


def export_foreign(model: nn.Module, path, shape, opset: int = 17, dynamic: bool = False):
    axes = {"image": {1: "h", 2: "w"} if model.nhwc else {2: "h", 3: "w"}} if dynamic else None
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(shape),), str(path), dynamo=False, opset_version=opset,
                          input_names=["image"], output_names=["logits"], dynamic_axes=axes)
    return path


@pytest.fixture(scope="module")
def two_classes(tmp_path_factory):
    path = tmp_path_factory.mktemp("classes") / "classes.csv"
    ClassTable((ClassInfo(0, "good", (0, 0, 0)), ClassInfo(1, "defect", (255, 0, 0)))).write_csv(path)
    return path


def _import(tmp_path, graph, classes, **options):
    return import_foreign(ImportOptions(str(graph), str(tmp_path / "wrapped.onnx"), str(classes), **options))


def _compile_and_run(wrapped, data, tmp_path, backend, labelled=True):
    out = tmp_path / f"bundle-{backend}"
    result = compile_bundle(CompileOptions(str(wrapped), str(out), backend=backend, precision="fp32",
                                           data=str(data) if labelled else None,
                                           calib=None if labelled else str(data / "images")), show_progress=False)
    assert result.passed and result.accuracy.pixel_agreement > 0.999
    cli = [sys.executable, "-m", "edgeseg"]
    ran = subprocess.run([*cli, "run", str(out), str(data / "images"), "--max-frames", "3", "--quiet", "--out",
                          str(tmp_path / f"run-{backend}")], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert len((tmp_path / f"run-{backend}" / "results.jsonl").read_text().splitlines()) == 3
    return out


def test_an_nchw_rgb_imagenet_graph_with_quarter_size_logits(synth_data, tmp_path):
    graph = export_foreign(Foreign(3, 5, stride=4), tmp_path / "smp.onnx", (1, 3, SIZE, SIZE))
    result = _import(tmp_path, graph, synth_data / "classes.csv", channel_order="rgb", input_order="bgr",
                     normalization="imagenet", data=str(synth_data))
    assert result.logits_shape == [1, 5, SIZE // 4, SIZE // 4] and (result.height, result.width) == (SIZE, SIZE)
    assert result.pixel_agreement > 0.999 and "val" in result.parity_source
    wrapped = onnx.load(str(result.path))
    props = {p.key: json.loads(p.value) for p in wrapped.metadata_props if p.key != "edgeseg.version"}
    assert props["edgeseg.input"]["color_order"] == "bgr" and props["edgeseg.model"]["arch"] == "foreign"
    assert [o.name for o in wrapped.graph.output] == ["mask", "confidence"]
    for backend in ("openvino", "onnxruntime"):
        bundle = _compile_and_run(result.path, synth_data, tmp_path, backend)
    verified = subprocess.run([sys.executable, "-m", "edgeseg", "verify", str(bundle), "--data", str(synth_data),
                               "--json"], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    assert "miou" in verified.stdout


def test_an_nhwc_bgr_graph_of_0_to_255_with_a_dynamic_size(synth_data, tmp_path):
    graph = export_foreign(Foreign(3, 5, nhwc=True), tmp_path / "mmseg.onnx", (1, SIZE, SIZE, 3), dynamic=True)
    with pytest.raises(ExportError, match="dynamic.*--size"):
        _import(tmp_path, graph, synth_data / "classes.csv", layout="nhwc")
    result = _import(tmp_path, graph, synth_data / "classes.csv", layout="nhwc", channel_order="bgr",
                     normalization="mmseg", height=SIZE, width=SIZE + 32)
    assert result.dynamic and result.pixel_agreement > 0.999 and result.logits_shape == [1, SIZE, SIZE + 32, 5]
    _compile_and_run(result.path, synth_data, tmp_path, "onnxruntime")


@pytest.mark.parametrize("head", ["sigmoid", "argmax"])
def test_a_sigmoid_channel_for_two_classes_and_an_argmaxed_output(synth_data, two_classes, tmp_path, head):
    model = Foreign(1, 1 if head == "sigmoid" else 2, stride=2, argmax=head == "argmax")
    graph = export_foreign(model, tmp_path / f"{head}.onnx", (1, 1, SIZE, SIZE))
    result = _import(tmp_path, graph, two_classes, channel_order="gray", normalization="unit", head=head)
    assert result.pixel_agreement > 0.999
    names = [o.name for o in onnx.load(str(result.path)).graph.output]
    assert names == (["mask", "confidence"] if head == "sigmoid" else ["mask"])
    _compile_and_run(result.path, synth_data, tmp_path, "openvino", labelled=False)


def test_an_old_opset_is_converted_and_what_does_not_fit_is_refused_in_one_line(synth_data, two_classes, tmp_path):
    graph = export_foreign(Foreign(3, 5, stride=2), tmp_path / "old.onnx", (1, 3, SIZE, SIZE), opset=11)
    result = _import(tmp_path, graph, synth_data / "classes.csv")
    assert next(o.version for o in onnx.load(str(result.path)).opset_import if o.domain == "") >= 13
    with pytest.raises(ExportError, match="gives 5 classes and the class table has 2"):
        _import(tmp_path, graph, two_classes)
    with pytest.raises(ExportError, match="3 channels where NCHW and channel order 'gray' mean 1"):
        _import(tmp_path, graph, synth_data / "classes.csv", channel_order="gray", input_order="gray")
    with pytest.raises(ExportError, match="fixed at 64x64"):
        _import(tmp_path, graph, synth_data / "classes.csv", height=128, width=128)
    with pytest.raises(ConfigError, match="--mean and --std need 3 values"):
        _import(tmp_path, graph, synth_data / "classes.csv", mean=[0.5], std=[0.5])
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(graph.read_bytes()[:500])
    with pytest.raises(ExportError, match="not a readable ONNX graph"):
        _import(tmp_path, truncated, synth_data / "classes.csv")


def test_the_cli_prints_the_parity_and_refuses_an_edgeseg_graph(synth_data, exported_graph, tmp_path):
    graph = export_foreign(Foreign(3, 5), tmp_path / "f.onnx", (1, 3, SIZE, SIZE))
    cli = [sys.executable, "-m", "edgeseg", "import"]
    done = subprocess.run([*cli, str(graph), "-o", str(tmp_path / "w.onnx"), "--classes",
                           str(synth_data / "classes.csv")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "fp32 parity with the foreign graph: 100.000 %" in done.stdout and "random frames" in done.stdout
    done = subprocess.run([*cli, str(exported_graph), "-o", str(tmp_path / "x.onnx"), "--classes",
                           str(synth_data / "classes.csv")], capture_output=True, text=True)
    assert done.returncode == 2 and "exported by edgeseg already" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
