"""``edgeseg export-serving``: model repositories for Triton and OpenVINO Model Server, the
Triton config parsed with Triton's own model-config protobuf (from tritonclient) and held to
the bundle it came from."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from edgeseg.engines.bundle import MANIFEST, sha256_file, write_manifest
from edgeseg.errors import ConfigError
from edgeseg.export.serving import MANIFEST_COPY, MANIFEST_PARAMETER, ServingOptions, export_serving


def _config(model_dir) -> pb.ModelConfig:
    return text_format.Parse((model_dir / "config.pbtxt").read_text(), pb.ModelConfig())


def _same_files(bundle, version_dir):
    manifest = json.loads((bundle / MANIFEST).read_text())
    for name in manifest["engine"]["files"]:
        assert sha256_file(version_dir / name) == manifest["files"][name]["sha256"], name
    return manifest


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_a_triton_repository_matches_the_bundle(bundle_factory, tmp_path, backend):
    bundle = bundle_factory(backend, "fp32").path
    model_dir = export_serving(ServingOptions(str(bundle), str(tmp_path / "repo"), "triton", name="parts"))
    config = _config(model_dir)
    manifest = _same_files(bundle, model_dir / "1")
    spec = manifest["input"]
    assert config.name == "parts" and config.backend == backend and config.max_batch_size == 0
    [frames] = config.input
    assert (frames.name, frames.data_type) == (spec["name"], pb.TYPE_UINT8)
    assert list(frames.dims) == [1, spec["height"], spec["width"], spec["channels"]]
    outputs = {o.name: (o.data_type, list(o.dims)) for o in config.output}
    assert outputs == {"mask": (pb.TYPE_UINT8, [1, spec["height"], spec["width"]]),
                       "confidence": (pb.TYPE_FP32, [1, spec["height"], spec["width"]])}
    assert [(g.kind, g.count) for g in config.instance_group] == [(pb.ModelInstanceGroup.KIND_CPU, 1)]
    assert config.parameters[MANIFEST_PARAMETER].string_value == manifest["manifest_sha256"]
    assert json.loads((model_dir / MANIFEST_COPY).read_text()) == manifest
    if backend == "openvino":
        assert config.parameters["PERFORMANCE_HINT"].string_value == "LATENCY"


def test_a_dynamic_bundle_gets_dynamic_batching_and_a_plan_its_compute_capability(bundle_factory, tmp_path):
    path = tmp_path / "trt"
    shutil.copytree(bundle_factory("onnxruntime", "fp32").path, path)
    manifest = json.loads((path / MANIFEST).read_text())
    (path / "model.plan").write_bytes(b"plan")
    manifest.update(backend="tensorrt", engine={"files": ["model.plan"], "options": {}},
                    fingerprint={"tensorrt": "10.3.0", "cuda_runtime": 12060, "gpu": "Orin",
                                 "compute_capability": "8.7"})
    manifest["input"] = {**manifest["input"], "dynamic": True, "shape": ["batch", "height", "width", 1]}
    for k in ("schema", "schema_version", "files", "manifest_sha256"):
        manifest.pop(k)
    write_manifest(path, manifest)
    config = _config(export_serving(ServingOptions(str(path), str(tmp_path / "repo"), "triton", max_batch_size=4)))
    assert config.platform == "tensorrt_plan" and config.max_batch_size == 4 and config.HasField("dynamic_batching")
    assert list(config.input[0].dims) == [-1, -1, 1] and list(config.output[0].dims) == [-1, -1]
    assert dict(config.cc_model_filenames) == {"8.7": "model.plan"}
    assert config.instance_group[0].kind == pb.ModelInstanceGroup.KIND_GPU


def test_an_ovms_repository_lists_each_model_once_and_keeps_the_others(bundle_factory, tmp_path):
    bundle = bundle_factory("openvino", "fp32").path
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "config.json").write_text(json.dumps({"model_config_list": [{"config": {"name": "other",
                                                                                    "base_path": "other"}}]}))
    for _ in range(2):  # exported twice: listed once
        model_dir = export_serving(ServingOptions(str(bundle), str(repo), "ovms", name="parts"))
    _same_files(bundle, model_dir / "1")
    entries = {e["config"]["name"]: e["config"] for e in json.loads((repo / "config.json").read_text())
               ["model_config_list"]}
    assert set(entries) == {"other", "parts"}
    assert entries["parts"]["base_path"] == "parts" and entries["parts"]["target_device"] == "CPU"
    manifest = json.loads((bundle / MANIFEST).read_text())
    assert entries["parts"]["plugin_config"]["INFERENCE_PRECISION_HINT"] == manifest["engine"]["inference_precision"]
    with pytest.raises(ConfigError, match="OpenVINO Model Server serves OpenVINO bundles"):
        export_serving(ServingOptions(str(bundle_factory("onnxruntime", "fp32").path), str(repo), "ovms"))


def test_the_cli_writes_a_repository(bundle_factory, tmp_path):
    done = subprocess.run([sys.executable, "-m", "edgeseg", "export-serving", str(bundle_factory("openvino", "fp32")
                           .path), "--to", "triton", "-o", str(tmp_path / "repo"), "--name", "parts"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "tritonserver --model-repository" in done.stdout and (tmp_path / "repo/parts/config.pbtxt").is_file()
