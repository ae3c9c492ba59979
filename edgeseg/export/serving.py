"""``edgeseg export-serving BUNDLE --to triton|ovms -o REPO``: a model repository a serving engine
loads as it is, from a checked bundle, with the bundle's manifest beside the model so that its
origin is never lost.

Triton: ``REPO/NAME/config.pbtxt`` (written with Triton's own model-config protobuf from the
``tritonclient`` package) and ``REPO/NAME/1/`` with the bundle's model file for its backend
(onnxruntime, openvino, or a TensorRT plan named for its compute capability). OpenVINO Model
Server: ``REPO/NAME/1/model.xml|bin`` and ``REPO/config.json``'s ``model_config_list`` (other
models already listed there are kept). OpenVINO Model API: ``REPO/NAME/model.xml|bin``, the IR
``SegmentationModel`` reads (``model_api.py``). Imports neither onnx nor torch.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from edgeseg.engines.base import require_module
from edgeseg.engines.bundle import MANIFEST, Bundle
from edgeseg.engines.kserve_engine import MANIFEST_PARAMETER  # in config.pbtxt: the remote engine checks it
from edgeseg.engines.tensorrt_engine import PLAN_FILE
from edgeseg.errors import ConfigError

SERVERS = ("triton", "ovms", "model-api")
MANIFEST_COPY = "edgeseg-manifest.json"
_TRITON_BACKEND = {"onnxruntime": ("backend", "onnxruntime"), "openvino": ("backend", "openvino"),
                   "tensorrt": ("platform", "tensorrt_plan")}


@dataclass
class ServingOptions:
    bundle: str
    output: str
    to: str = "triton"
    name: str | None = None  # default: the bundle folder's name
    version: int = 1
    instances: int = 1
    max_batch_size: int = 8  # for bundles with a dynamic batch


def model_name(bundle: Bundle, given: str | None) -> str:
    name = given or re.sub(r"[^A-Za-z0-9_.-]", "_", bundle.path.resolve().name)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ConfigError(f"model name '{name}' may hold letters, digits, '_', '-' and '.' only")
    return name


def _copy_model(bundle: Bundle, version_dir: Path) -> None:
    version_dir.mkdir(parents=True, exist_ok=True)
    for name in bundle.manifest["engine"]["files"]:
        shutil.copyfile(bundle.file(name), version_dir / name)


def _manifest_copy(bundle: Bundle, model_dir: Path) -> None:
    shutil.copyfile(bundle.path / MANIFEST, model_dir / MANIFEST_COPY)


def export_serving(opts: ServingOptions) -> Path:
    """Write the model repository entry; returns the model's folder."""
    if opts.to not in SERVERS:
        raise ConfigError(f"unknown server '{opts.to}'", fix=f"choose {' or '.join(SERVERS)}")
    bundle = Bundle.read(opts.bundle)
    name = model_name(bundle, opts.name)
    repo = Path(opts.output)
    model_dir = repo / name
    if opts.to == "ovms" and bundle.backend != "openvino":
        raise ConfigError(f"OpenVINO Model Server serves OpenVINO bundles, not {bundle.backend}", bundle.path,
                          "compile the graph with --backend openvino, or export it --to triton")
    if opts.to == "model-api":
        from edgeseg.export.model_api import model_api_ir

        model_api_ir(bundle, model_dir)
        _manifest_copy(bundle, model_dir)
        return model_dir
    version_dir = model_dir / str(opts.version)
    if version_dir.exists():
        shutil.rmtree(version_dir)  # this version is replaced whole; other versions stay
    if opts.to == "triton":
        write_triton(bundle, name, model_dir, opts)
    else:
        write_ovms(bundle, name, repo, opts)
    _manifest_copy(bundle, model_dir)
    return model_dir


def write_triton(bundle: Bundle, name: str, model_dir: Path, opts: ServingOptions) -> None:
    text_format = require_module("google.protobuf.text_format", "protobuf", "pip install 'edgeseg[serving]'")
    config = triton_config(bundle, name, opts)
    _copy_model(bundle, model_dir / str(opts.version))
    (model_dir / "config.pbtxt").write_text(text_format.MessageToString(config))


def write_ovms(bundle: Bundle, name: str, repo: Path, opts: ServingOptions) -> None:
    _copy_model(bundle, repo / name / str(opts.version))
    config_path = repo / "config.json"
    try:
        config = json.loads(config_path.read_text()) if config_path.is_file() else {"model_config_list": []}
    except json.JSONDecodeError as e:
        raise ConfigError(f"not valid JSON ({e})", config_path, "fix or remove it") from None
    entries = [e for e in config.get("model_config_list", []) if e.get("config", {}).get("name") != name]
    entries.append({"config": ovms_entry(bundle, name, opts)})
    config["model_config_list"] = entries
    config_path.write_text(json.dumps(config, indent=2) + "\n")


def _openvino_properties(bundle: Bundle) -> dict:
    """The OpenVINO settings a bundle was built with, as OpenVINO names them (both servers take them)."""
    options = bundle.manifest["engine"]["options"]
    properties: dict = {"PERFORMANCE_HINT": options.get("hint", "latency").upper()}
    if options.get("threads"):
        properties["INFERENCE_NUM_THREADS"] = int(options["threads"])
    if options.get("streams"):
        properties["NUM_STREAMS"] = str(options["streams"])
    return properties


def ovms_entry(bundle: Bundle, name: str, opts: ServingOptions) -> dict:
    info = bundle.manifest["engine"]
    plugin = {**_openvino_properties(bundle), "INFERENCE_PRECISION_HINT": info["inference_precision"]}
    options = info["options"]
    entry = {"name": name, "base_path": name, "target_device": options.get("device", "CPU"),
             "plugin_config": plugin}
    if bundle.manifest["input"].get("dynamic"):
        entry["shape"] = "auto"  # reshaped to each request's frames
    return entry


def triton_config(bundle: Bundle, name: str, opts: ServingOptions):
    """The ModelConfig message (Triton's model_config.proto) for this bundle."""
    pb = require_module("tritonclient.grpc.model_config_pb2", "tritonclient", "pip install 'edgeseg[serving]'")
    manifest = bundle.manifest
    spec = manifest["input"]
    dynamic = bool(spec.get("dynamic"))
    frame = [-1, -1] if dynamic else [spec["height"], spec["width"]]
    batch = [] if dynamic else [spec["shape"][0]]
    config = pb.ModelConfig(name=name, max_batch_size=opts.max_batch_size if dynamic else 0)
    field, value = _TRITON_BACKEND[bundle.backend]
    setattr(config, field, value)
    config.input.add(name=spec["name"], data_type=pb.TYPE_UINT8, dims=batch + frame + [spec["channels"]])
    for output in manifest["outputs"]:
        dtype = pb.TYPE_UINT8 if output["dtype"] == "uint8" else pb.TYPE_FP32
        config.output.add(name=output["name"], data_type=dtype, dims=batch + frame)
    gpu = bundle.backend == "tensorrt"
    config.instance_group.add(count=opts.instances, kind=pb.ModelInstanceGroup.KIND_GPU if gpu
                              else pb.ModelInstanceGroup.KIND_CPU)
    if dynamic:
        config.dynamic_batching.SetInParent()
    if gpu:  # a plan runs on the GPU model it was built for only
        config.cc_model_filenames[str(manifest["fingerprint"]["compute_capability"])] = PLAN_FILE
    for key, text in _triton_parameters(bundle).items():
        config.parameters[key].string_value = text
    return config


def _triton_parameters(bundle: Bundle) -> dict[str, str]:
    parameters = {MANIFEST_PARAMETER: bundle.manifest["manifest_sha256"]}
    if bundle.backend == "openvino":
        parameters.update({key: str(value) for key, value in _openvino_properties(bundle).items()})
        if bundle.manifest["engine"].get("inference_precision") == "bf16":
            parameters["HINT_BF16"] = "YES"
    return parameters
