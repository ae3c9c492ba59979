"""Bundle portability: which runtime releases load a bundle, and ``compile --from`` rebuilding an
OpenVINO bundle for this machine's OpenVINO with the run side only."""

import json
import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from edgeseg.data.frames import load_frames
from edgeseg.engines import backend_module, open_engine
from edgeseg.engines.bundle import MANIFEST, loads_forward, release, write_manifest
from edgeseg.engines.trust import LoadPolicy, load_policy, set_load_policy
from edgeseg.errors import BundleError

# a run-side install: the CLI started with onnx and torch unimportable, as on a device
RUN_SIDE_ONLY = ("import sys; sys.modules.update(onnx=None, torch=None, nncf=None, onnxslim=None); "
                 "from edgeseg.cli import main; sys.exit(main(sys.argv[1:]))")


@pytest.fixture
def policy():
    yield set_load_policy
    set_load_policy(LoadPolicy())


def _as_built_with(source, target, backend_version: str):
    """A copy of a bundle whose manifest says it was built with another OpenVINO release."""
    shutil.copytree(source, target)
    manifest = json.loads((target / MANIFEST).read_text())
    manifest["fingerprint"]["openvino"] = backend_version
    manifest["built_with"]["openvino"] = backend_version
    for k in ("schema", "schema_version", "files", "manifest_sha256"):
        manifest.pop(k)
    write_manifest(target, manifest)  # consistent, as the machine that built it wrote it
    return target


def _here() -> tuple[int, ...]:
    return release(backend_module("openvino").version())


def test_release_numbers_and_the_same_major_newer_rule():
    assert release("2026.4.1-22982-e213a147257-releases/2026/4") == (2026, 4, 1)
    assert loads_forward("openvino", "2026.4.0", "2026.4.1")
    assert not loads_forward("openvino", "2026.4.1", "2026.4.0")  # an older runtime
    assert not loads_forward("openvino", "2025.4.0", "2026.4.1")  # another major
    assert loads_forward("onnxruntime", "1.18.0", "1.32.0")
    assert not loads_forward("tensorrt", "10.3.0", "10.16.0")  # a plan needs its own release


def test_a_bundle_from_an_older_release_of_the_same_major_loads_with_a_warning(bundle_factory, tmp_path, caplog):
    major, minor = _here()[:2]
    older = f"{major}.{minor - 1 if minor else 0}.0" if _here() > (major, 0, 0) else None
    if older is None:
        pytest.fail("this OpenVINO is the first of its major version; the test needs an older one to pretend")
    path = _as_built_with(bundle_factory("openvino", "fp32").path, tmp_path / "older", older)
    with caplog.at_level(logging.WARNING, logger="edgeseg"), open_engine(path) as engine:
        engine.infer()
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert f"built with '{older}'" in warning and f"edgeseg compile --from {path}" in warning


def test_a_newer_release_or_another_major_is_refused_unless_allowed(bundle_factory, tmp_path, policy, caplog):
    major = _here()[0]
    for version in (f"{major}.999.0", f"{major - 1}.0.0"):
        path = _as_built_with(bundle_factory("openvino", "fp32").path, tmp_path / version, version)
        with pytest.raises(BundleError, match=f"built with '{version}'.*compile --from {path}"):
            open_engine(path)
    policy(LoadPolicy(allow_version_mismatch=True))
    assert load_policy().allow_version_mismatch
    with caplog.at_level(logging.WARNING, logger="edgeseg"), open_engine(path):
        pass
    assert "as --allow-version-mismatch asks" in caplog.text


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_compile_from_rebuilds_a_refused_bundle_without_onnx_or_torch(bundle_factory, synth_data, tmp_path,
                                                                      precision):
    original = bundle_factory("openvino", precision).path
    newer = _as_built_with(original, tmp_path / "newer", f"{_here()[0]}.999.0")
    with pytest.raises(BundleError):
        open_engine(newer)
    rebuilt = tmp_path / "rebuilt"
    done = subprocess.run([sys.executable, "-c", RUN_SIDE_ONLY, "compile", "--from", str(newer), "-o", str(rebuilt)],
                          capture_output=True, text=True, env={**os.environ, "EDGESEG_CACHE_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "parity record of the original build kept" in done.stdout
    old, new = (json.loads((p / MANIFEST).read_text()) for p in (newer, rebuilt))
    assert new["parity"] == old["parity"] and new["precision"] == precision
    assert new["engine"]["options"] == old["engine"]["options"]
    assert new["fingerprint"]["openvino"] == backend_module("openvino").version()
    assert new["rebuilt_from"]["fingerprint"]["openvino"] == f"{_here()[0]}.999.0"
    frames = load_frames(synth_data, 1, 64, 64, 8, split="val").frames
    assert _masks(rebuilt, frames).tolist() == _masks(original, frames).tolist()  # the same graph, so the same masks


def _masks(bundle, frames) -> np.ndarray:
    with open_engine(bundle) as engine:
        out = []
        for frame in frames:
            engine.input[0] = frame
            engine.infer()
            out.append(engine.mask.copy())
    return np.concatenate(out)


def test_compile_from_refuses_what_it_cannot_rebuild(bundle_factory, tmp_path):
    onnxruntime_bundle = bundle_factory("onnxruntime", "fp32").path
    done = subprocess.run([sys.executable, "-c", RUN_SIDE_ONLY, "compile", "--from", str(onnxruntime_bundle),
                           "-o", str(tmp_path / "x")], capture_output=True, text=True)
    assert done.returncode == 2 and "cannot be rebuilt from itself" in done.stderr
    assert "edgeseg compile" in done.stderr and not (tmp_path / "x").exists()
    done = subprocess.run([sys.executable, "-c", RUN_SIDE_ONLY, "compile", "--from", "B", "--precision", "int8",
                           "-o", str(tmp_path / "y")], capture_output=True, text=True)
    assert done.returncode == 2 and "--precision only apply to compiling a graph" in done.stderr
