"""edgeseg compile: precision graphs, backends, the parity gate, and what a bundle records."""

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from edgeseg.data.frames import load_frames
from edgeseg.engines import open_engine
from edgeseg.engines.accuracy import AccuracyReport, ReferenceEngine, gate, run_frames
from edgeseg.errors import ConfigError, DatasetError, EngineError, ExportError
from edgeseg.export import compile as compile_module
from edgeseg.export.compile import CompileOptions, compile_bundle
from edgeseg.export.precision import classifier_convs

CASES = [("openvino", "fp32"), ("openvino", "fp16"), ("openvino", "bf16"), ("openvino", "int8"),
         ("onnxruntime", "fp32"), ("onnxruntime", "fp16"), ("onnxruntime", "int8")]


def _cpu_has_bf16() -> bool:
    import openvino as ov
    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


@pytest.mark.parametrize("backend, precision", CASES)
def test_every_backend_and_precision_builds_a_bundle_that_proves_itself(bundle_factory, synth_data, backend,
                                                                        precision):
    if precision == "bf16" and not _cpu_has_bf16():
        with pytest.raises(EngineError, match="cannot run bf16"):
            bundle_factory(backend, precision)
        return
    result = bundle_factory(backend, precision)
    m = result.manifest
    assert (m["backend"], m["precision"]) == (backend, precision)
    parity = m["parity"]
    assert parity["images"] == len(load_frames(synth_data, 1, 64, 64, 200, split="val"))
    assert parity["engine"]["per_class_iou"].keys() == parity["reference"]["per_class_iou"].keys()
    assert parity["forced"] == (not parity["passed"])
    if precision != "int8":  # the float precisions must pass the gate on their own
        assert parity["passed"] and parity["pixel_agreement"] >= 0.99
    # the engine loaded from the written bundle gives what the gate measured
    frames = load_frames(synth_data, 1, 64, 64, 200, split="val")
    with open_engine(result.path) as engine:
        engine.input[:] = frames.frames[:1]
        engine.infer()
        with ReferenceEngine(result.path / "reference.onnx", frames.frames.shape[1:]) as runner:
            reference = run_frames(runner, frames.frames[:1])
        agreement = (engine.mask == reference).mean()
        assert agreement >= (0.99 if precision != "int8" else 0.5)
        assert engine.confidence.min() >= 0 and engine.confidence.max() <= 1.0001
    assert not list(result.path.parent.glob(".*partial*"))


def test_fp16_graph_keeps_uint8_frames_in_and_mask_out(bundle_factory):
    result = bundle_factory("onnxruntime", "fp16")
    graph = onnx.load(str(result.path / "model.onnx"))
    types = {v.name: v.type.tensor_type.elem_type for v in list(graph.graph.input) + list(graph.graph.output)}
    assert types == {"frames": onnx.TensorProto.UINT8, "mask": onnx.TensorProto.UINT8,
                     "confidence": onnx.TensorProto.FLOAT}
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in graph.graph.initializer)


def test_int8_graph_is_quantized_except_the_classifier(exported_graph, synth_data):
    from edgeseg.export.precision import int8_graph

    model = onnx.load(str(exported_graph))
    head = classifier_convs(model)
    assert len(head) == 1
    frames = load_frames(synth_data, 1, 64, 64, 16, with_masks=False).frames
    quantized = int8_graph(model, frames, "frames", 1)
    ops = [n.op_type for n in quantized.graph.node]
    assert ops.count("QuantizeLinear") > 10 and ops.count("DequantizeLinear") > 10
    # the classifier conv reads an activation no QuantizeLinear produced
    producers = {o: n for n in quantized.graph.node for o in n.output}
    conv = next(n for n in quantized.graph.node if n.name == head[0])
    assert producers[conv.input[0]].op_type != "DequantizeLinear"


def test_float_sums_recipe_keeps_the_stem_and_the_sums_in_float(exported_graph, synth_data):
    from edgeseg.export.precision import int8_graph

    model = onnx.load(str(exported_graph))
    frames = load_frames(synth_data, 1, 64, 64, 16, with_masks=False).frames
    standard = int8_graph(model, frames, "frames", 1)
    float_sums = int8_graph(model, frames, "frames", 1, recipe="float-sums")

    def quantized_inputs(graph, op_types):
        producers = {o: n for n in graph.graph.node for o in n.output}
        return sum(producers[i].op_type == "DequantizeLinear" for n in graph.graph.node if n.op_type in op_types
                   for i in n.input if i in producers)

    assert quantized_inputs(standard, ("Concat", "Add", "Resize")) > 0  # the U-Net decoder's concatenations
    assert quantized_inputs(float_sums, ("Concat", "Add", "Resize")) == 0

    def stem_weights_from(graph):  # what produces the first convolution's weights: None for a float initializer
        producers = {o: n for n in graph.graph.node for o in n.output}
        stem = next(n for n in graph.graph.node if n.op_type == "Conv")
        return getattr(producers.get(stem.input[1]), "op_type", None)

    assert stem_weights_from(standard) == "DequantizeLinear" and stem_weights_from(float_sums) is None
    with pytest.raises(ExportError, match="unknown int8 recipe"):
        int8_graph(model, frames, "frames", 1, recipe="fastest")


def test_int8_below_the_gate_is_quantized_again_with_the_float_sums_recipe(exported_graph, synth_data, tmp_path,
                                                                          monkeypatch):
    recipes = []
    real_int8_graph, real_gate = compile_module.int8_graph, compile_module.gate

    def recording_int8_graph(*args):
        recipes.append(args[-1])
        return real_int8_graph(*args)

    def standard_recipe_fails(report, precision):  # whatever it measures
        return (False, "lost 3.1") if len(recipes) == 1 else real_gate(report, precision)

    monkeypatch.setattr(compile_module, "int8_graph", recording_int8_graph)
    monkeypatch.setattr(compile_module, "gate", standard_recipe_fails)
    result = compile_bundle(CompileOptions(str(exported_graph), str(tmp_path / "b"), backend="onnxruntime",
                                           precision="int8", calib=str(synth_data), data=str(synth_data), force=True),
                            False)
    assert recipes == ["standard", "float-sums"]
    assert result.manifest["calibration"]["recipe"] == "float-sums"
    assert any("standard recipe) failed the gate: lost 3.1" in note for note in result.manifest["notes"])
    val = load_frames(synth_data, 1, 64, 64, 200, split="val", with_masks=False).frames
    with open_engine(result.path) as engine:  # the engine written is the one measured: the second
        masks = run_frames(engine, val)
    with ReferenceEngine(result.path / "reference.onnx", val.shape[1:]) as runner:
        reference = run_frames(runner, val)
    assert (masks == reference).mean() == pytest.approx(result.manifest["parity"]["pixel_agreement"], abs=1e-6)


def test_int8_records_its_calibration_and_warns_below_300_frames(bundle_factory, exported_graph, synth_data,
                                                                 tmp_path):
    m = bundle_factory("openvino", "int8").manifest
    assert m["calibration"]["frames"] == len(load_frames(synth_data, 1, 64, 64, 300, split="train",
                                                         with_masks=False))
    assert any("calibration frames" in note for note in m["notes"])


def test_int8_without_calibration_frames_is_refused(exported_graph, tmp_path):
    with pytest.raises(ConfigError, match="calibration"):
        compile_bundle(CompileOptions(str(exported_graph), str(tmp_path / "b"), precision="int8"), False)


def test_empty_calibration_folder_is_a_clear_error(exported_graph, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        compile_bundle(CompileOptions(str(exported_graph), str(tmp_path / "b"), precision="int8",
                                      calib=str(tmp_path / "empty")), False)
    assert not (tmp_path / "b").exists()


def test_a_graph_below_the_gate_is_not_written_unless_forced(exported_graph, synth_data, tmp_path, monkeypatch):
    monkeypatch.setattr(compile_module, "gate", lambda report, precision: (False, "a rule nobody meets"))
    opts = CompileOptions(str(exported_graph), str(tmp_path / "b"), backend="onnxruntime", data=str(synth_data))
    with pytest.raises(ExportError, match="parity gate failed: a rule nobody meets"):
        compile_bundle(opts, False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    opts.force = True
    m = compile_bundle(opts, False).manifest
    assert m["parity"]["forced"] and not m["parity"]["passed"]


@pytest.mark.parametrize("report, precision, passes", [
    (AccuracyReport(1, 0.9995, None, None, ""), "fp32", True),
    (AccuracyReport(1, 0.9985, None, None, ""), "fp32", False),
    (AccuracyReport(1, 0.991, None, None, ""), "fp16", True),
    (AccuracyReport(1, 0.985, None, None, ""), "bf16", False),
    (AccuracyReport(1, 0.9, {"miou": 0.705}, {"miou": 0.71}, ""), "int8", True),
    (AccuracyReport(1, 0.99, {"miou": 0.69}, {"miou": 0.71}, ""), "int8", False),
    (AccuracyReport(1, 0.985, None, None, ""), "int8", True),
])
def test_gate_rules(report, precision, passes):
    assert gate(report, precision)[0] is passes


def test_corrupt_or_foreign_graphs_are_refused(exported_graph, tmp_path):
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(Path(exported_graph).read_bytes()[:5000])
    with pytest.raises(ExportError, match="not a readable ONNX graph"):
        compile_bundle(CompileOptions(str(truncated), str(tmp_path / "b"), data="x"), False)
    foreign = onnx.load(str(exported_graph))
    del foreign.metadata_props[:]
    onnx.save(foreign, str(tmp_path / "foreign.onnx"))
    with pytest.raises(ExportError, match="not exported by edgeseg"):
        compile_bundle(CompileOptions(str(tmp_path / "foreign.onnx"), str(tmp_path / "b"), data="x"), False)


def test_precision_a_backend_lacks_is_refused(exported_graph, tmp_path):
    with pytest.raises(ConfigError, match="onnxruntime does not take precision bf16"):
        compile_bundle(CompileOptions(str(exported_graph), str(tmp_path / "b"), backend="onnxruntime",
                                      precision="bf16", data="x"), False)


def test_rebuilding_replaces_a_bundle_but_never_another_folder(bundle_factory, exported_graph, synth_data, tmp_path):
    out = tmp_path / "b"
    opts = CompileOptions(str(exported_graph), str(out), backend="onnxruntime", data=str(synth_data))
    first = json.loads((compile_bundle(opts, False).path / "manifest.json").read_text())
    second = json.loads((compile_bundle(opts, False).path / "manifest.json").read_text())
    assert first["files"] == second["files"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(Exception, match="not a bundle"):
        compile_bundle(CompileOptions(str(exported_graph), str(tmp_path / "mine"), data=str(synth_data)), False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_cli_compile_info_and_verify(exported_graph, synth_data, tmp_path):
    out = tmp_path / "bundle"
    run = lambda *a: subprocess.run([sys.executable, "-m", "edgeseg", *a], capture_output=True, text=True)  # noqa: E731
    done = run("compile", str(exported_graph), "--backend", "onnxruntime", "--data", str(synth_data), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "passed" in done.stdout and "wrote" in done.stdout
    info = run("info", str(out))
    assert info.returncode == 0 and "onnxruntime" in info.stdout and "sha256" in info.stdout
    assert json.loads(run("info", str(out), "--json").stdout)["precision"] == "fp32"
    verify = run("verify", str(out), "--data", str(synth_data))
    assert verify.returncode == 0, verify.stderr
    assert "background" in verify.stdout and "100.000 %" in verify.stdout
    missing = run("compile", str(tmp_path / "nope.onnx"), "--data", str(synth_data), "-o", str(tmp_path / "x"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "not found" in missing.stderr


@pytest.mark.slow
def test_accuracy_controlled_int8_stays_within_its_drop_on_the_labelled_frames(exported_graph, synth_data):
    from edgeseg.export.precision import ACCURACY_CONTROL_MAX_DROP, _miou_through_onnxruntime, int8_graph

    model = onnx.load(str(exported_graph))
    labelled = load_frames(synth_data, 1, 64, 64, 24, split="train")
    quantized = int8_graph(model, labelled.frames, "frames", 1, labelled.truth, 5)
    assert [n.op_type for n in quantized.graph.node].count("QuantizeLinear") > 0
    items = [(labelled.frames[i:i + 1], labelled.truth[i:i + 1]) for i in range(len(labelled))]
    miou = _miou_through_onnxruntime(5)
    assert miou(quantized, items) >= miou(model, items) - ACCURACY_CONTROL_MAX_DROP - 1e-9


def test_accuracy_control_needs_a_labelled_calibration_set(exported_graph, synth_data, tmp_path):
    import shutil

    shutil.copytree(synth_data / "images", tmp_path / "frames")
    with pytest.raises(ConfigError, match="labelled data set"):
        compile_bundle(CompileOptions(str(exported_graph), str(tmp_path / "b"), precision="int8",
                                      calib=str(tmp_path / "frames"), accuracy_control=True), False)


def test_a_compile_clears_the_work_folders_of_compiles_that_were_killed(exported_graph, synth_data, tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, alive = int(gone.stdout), os.getppid()  # a process that has ended, and one that runs
    leftovers = [tmp_path / f".b.partial-{dead}", tmp_path / f".b.old-{dead}", tmp_path / f".b.partial-{alive}"]
    for folder in leftovers:
        folder.mkdir()
        (folder / "graph.onnx").write_bytes(b"half written")
    (tmp_path / f".other.partial-{dead}").mkdir()  # another output's: not this compile's to touch
    compile_bundle(CompileOptions(str(exported_graph), str(tmp_path / "b"), backend="onnxruntime",
                                  data=str(synth_data)), False)
    assert [folder.exists() for folder in leftovers] == [False, False, True]
    assert (tmp_path / f".other.partial-{dead}").exists() and (tmp_path / "b" / "manifest.json").is_file()
