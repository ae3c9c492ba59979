"""ONNX Runtime bundles compute the confidence without a Softmax across channels: same mask, same values."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgeseg.export.head import confidence_without_softmax


def test_the_rewritten_head_gives_the_same_mask_and_confidence(exported_graph):
    model = onnx.load(str(exported_graph))
    rewritten, count = confidence_without_softmax(model)
    assert count == 1
    assert "Softmax" not in {n.op_type for n in rewritten.graph.node}
    assert {"Exp", "ReduceSum", "Reciprocal"} <= {n.op_type for n in rewritten.graph.node}
    frames = np.random.default_rng(0).integers(0, 256, (1, 64, 64, 1), dtype=np.uint8)
    before = ort.InferenceSession(model.SerializeToString()).run(None, {"frames": frames})
    after = ort.InferenceSession(rewritten.SerializeToString()).run(None, {"frames": frames})
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_allclose(before[1], after[1], rtol=1e-5, atol=1e-6)


def test_a_graph_without_the_softmax_head_is_left_alone(exported_graph):
    model = onnx.load(str(exported_graph))
    once, _ = confidence_without_softmax(model)
    twice, count = confidence_without_softmax(once)
    assert count == 0 and twice.graph == once.graph


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_onnxruntime_bundles_carry_the_rewritten_head_and_pass_the_gate(bundle_factory, precision):
    bundle = bundle_factory("onnxruntime", precision)
    ops = {n.op_type for n in onnx.load(str(bundle.path / "model.onnx")).graph.node}
    assert "Softmax" not in ops and "Reciprocal" in ops
    if precision != "int8":  # the fixture forces int8 bundles of its tiny model through the gate
        assert bundle.passed


def test_openvino_bundles_keep_the_softmax_head(bundle_factory):
    import xml.etree.ElementTree as ET

    layers = ET.parse(bundle_factory("openvino", "fp32").path / "model.xml").getroot().iter("layer")
    assert "SoftMax" in {layer.get("type") for layer in layers}
