"""The deploy graph's head, rewritten for backends whose Softmax across channels is slow.

The exported graph ends in Softmax(axis=1) feeding ReduceMax (the confidence) and ArgMax (the
mask). The same mask and the same top probability come from ArgMax(logits) and
1 / ReduceSum(Exp(logits - ReduceMax(logits))). ONNX Runtime's CPU Softmax across channels is
slow and OpenVINO's is fast, so only ONNX Runtime bundles get the rewrite
(docs/decisions/0005-onnxruntime-head-rewrite.md).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def _attribute(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _reduces_channels(node: onnx.NodeProto, initializers: dict) -> bool:
    axes = _attribute(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1] in initializers:
        axes = numpy_helper.to_array(initializers[node.input[1]]).tolist()
    return list(axes or []) == [1] and _attribute(node, "keepdims", 1) == 0


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    found: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            found.setdefault(name, []).append(node)
    return found


def _ends(tensor: str, consumers: dict) -> list[onnx.NodeProto] | None:
    """The nodes that read ``tensor``, looking through Casts (an fp16 graph wraps the head in them);
    None where a Cast's value also leaves the graph or reaches nothing."""
    ends = []
    for node in consumers.get(tensor, []):
        if node.op_type != "Cast":
            ends.append(node)
            continue
        after = _ends(node.output[0], consumers)
        if not after:
            return None
        ends += after
    return ends


def _prune_and_sort(graph: onnx.GraphProto) -> None:
    """Drop nodes whose outputs nobody reads, then put the rest in topological order."""
    producer = {out: i for i, node in enumerate(graph.node) for out in node.output}
    kept, stack = set(), [o.name for o in graph.output]
    while stack:  # walk back from the outputs (the node list need not be in order yet)
        index = producer.get(stack.pop())
        if index is not None and index not in kept:
            kept.add(index)
            stack.extend(graph.node[index].input)
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    ordered, waiting = [], [node for i, node in enumerate(graph.node) if i in kept]
    while waiting:
        ready = [n for n in waiting if all(i in available for i in n.input)]
        if not ready:
            raise ValueError("the graph has a cycle or reads a tensor nothing makes")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        waiting = [n for n in waiting if n not in ready]
    del graph.node[:]
    graph.node.extend(ordered)


def confidence_without_softmax(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """The model with every matching Softmax head rewritten, and how many were."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    initializers = {i.name: i for i in graph.initializer}
    consumers = _consumers(graph)
    rewritten = 0
    for softmax in [n for n in graph.node if n.op_type == "Softmax"]:
        ends = _ends(softmax.output[0], consumers)
        if not ends or _attribute(softmax, "axis", -1) != 1:
            continue
        reducers = [n for n in ends if n.op_type == "ReduceMax"]
        argmaxes = [n for n in ends if n.op_type == "ArgMax"]
        if (len(reducers) != 1 or not argmaxes or len(ends) != 1 + len(argmaxes)
                or not _reduces_channels(reducers[0], initializers)
                or any(_attribute(a, "axis", 0) != 1 for a in argmaxes)):
            continue
        logits, confidence, tag = softmax.input[0], reducers[0].output[0], f"/head{rewritten}"
        axes = f"{tag}/axes"
        graph.initializer.append(numpy_helper.from_array(np.array([1], np.int64), axes))
        top_inputs, top_attrs = ([logits, axes], {}) if opset >= 18 else ([logits], {"axes": [1]})
        graph.node.extend([
            helper.make_node("ReduceMax", top_inputs, [f"{tag}/top"], f"{tag}/ReduceMax", keepdims=1, **top_attrs),
            helper.make_node("Sub", [logits, f"{tag}/top"], [f"{tag}/shifted"], f"{tag}/Sub"),
            helper.make_node("Exp", [f"{tag}/shifted"], [f"{tag}/exp"], f"{tag}/Exp"),
            helper.make_node("ReduceSum", [f"{tag}/exp", axes], [f"{tag}/sum"], f"{tag}/ReduceSum", keepdims=0),
            helper.make_node("Reciprocal", [f"{tag}/sum"], [confidence], f"{tag}/Reciprocal")])
        graph.node.remove(reducers[0])
        for argmax in argmaxes:  # the argmax of the probabilities is the argmax of the logits
            argmax.input[0] = logits
        rewritten += 1
    if rewritten:
        _prune_and_sort(graph)
        onnx.checker.check_model(model)
    return model, rewritten
