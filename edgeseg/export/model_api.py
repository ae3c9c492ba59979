"""The form of an OpenVINO bundle that OpenVINO Model API's ``SegmentationModel`` reads
(``export-serving BUNDLE --to model-api``): one IR with one output and Model API's ``model_info``.

Model API takes a segmentation IR with a single output (besides an optional ``feature_vector``),
the soft prediction N x K x H x W, and argmaxes and resizes it itself; edgeseg's IR gives two
(mask and confidence). So this IR ends at the graph's softmax instead, and takes the camera's
frames at any size: the resize to the model's input is embedded in front (OpenVINO's
PrePostProcessor, linear, as edgeseg's runtime resizes), which ``embedded_processing`` tells Model
API. Its ``model_info`` says the model type, the labels and that input size.
"""

from __future__ import annotations

from pathlib import Path

from edgeseg.engines.base import require_module
from edgeseg.engines.bundle import Bundle
from edgeseg.errors import ConfigError, EngineError, first_line

MODEL_FILES = ("model.xml", "model.bin")


def _softmax(model):
    found = [op for op in model.get_ordered_ops() if op.get_type_name() in ("Softmax", "SoftMax")]
    if not found:
        raise ConfigError("this bundle's graph has no softmax to give Model API a soft prediction",
                          fix="export the model with its confidence output (the default)")
    return found[-1]


def model_info(bundle: Bundle) -> dict[str, str]:
    spec = bundle.manifest["input"]
    labels = " ".join(c["name"].replace(" ", "_") for c in bundle.manifest["classes"])
    return {"model_type": "Segmentation", "labels": labels, "embedded_processing": "True",
            "orig_height": str(spec["height"]), "orig_width": str(spec["width"]),
            "blur_strength": "-1", "soft_threshold": "-inf", "return_soft_prediction": "False"}


def model_api_ir(bundle: Bundle, out: Path) -> Path:
    """Write the Model API form of ``bundle`` (an OpenVINO bundle) as ``out/model.xml|bin``."""
    if bundle.backend != "openvino":
        raise ConfigError(f"Model API reads OpenVINO IRs; this is a {bundle.backend} bundle", bundle.path,
                          "compile the graph with --backend openvino")
    ov = require_module("openvino", "OpenVINO", "pip install 'edgeseg[openvino]'")
    preprocess = require_module("openvino.preprocess", "OpenVINO", "pip install 'edgeseg[openvino]'")
    try:
        model = ov.Core().read_model(str(bundle.file(MODEL_FILES[0])))
    except Exception as e:
        raise EngineError(f"OpenVINO cannot read the bundle's IR ({first_line(e)})", bundle.path) from None
    soft = ov.Model([ov.opset13.result(_softmax(model).output(0))], model.get_parameters(), "edgeseg-model-api")
    soft.output(0).get_tensor().set_names({"soft_prediction"})
    ppp = preprocess.PrePostProcessor(soft)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_spatial_dynamic_shape()
    ppp.input().preprocess().convert_element_type(ov.Type.f32).resize(preprocess.ResizeAlgorithm.RESIZE_LINEAR)
    ppp.input().model().set_layout(ov.Layout("NHWC"))
    soft = ppp.build()
    for key, value in model_info(bundle).items():
        soft.set_rt_info(value, ["model_info", key])
    out.mkdir(parents=True, exist_ok=True)
    ov.save_model(soft, str(out / MODEL_FILES[0]), compress_to_fp16=False)
    return out / MODEL_FILES[0]
