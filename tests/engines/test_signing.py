"""Signed bundles: what checksums alone let through, and what --trust refuses."""

import json
import shutil
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgeseg.engines import open_engine
from edgeseg.engines.bundle import MANIFEST, Bundle, write_manifest
from edgeseg.engines.trust import SIGNATURE_FILE, LoadPolicy, set_load_policy, sign_bundle
from edgeseg.errors import BundleError, ConfigError


@pytest.fixture
def trusting():
    def trust(*keys):
        set_load_policy(LoadPolicy(tuple(keys)))
    yield trust
    set_load_policy(LoadPolicy())


def _key_pair(folder, name="signing"):
    key = Ed25519PrivateKey.generate()
    private, public = folder / f"{name}.pem", folder / f"{name}.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def _forge(path, change):
    """Edit a bundle as a forger would: change the manifest, then recompute every checksum."""
    manifest = json.loads((path / MANIFEST).read_text())
    change(path, manifest)
    for k in ("schema", "schema_version", "files", "manifest_sha256"):
        manifest.pop(k)
    write_manifest(path, manifest)


def _rename_a_class(path, manifest):
    manifest["classes"][1]["name"] = "harmless"


def _swap_the_model(path, manifest):
    shutil.copyfile(path / "reference.onnx", path / "model.onnx")


@pytest.fixture
def signed(bundle_factory, tmp_path):
    private, public = _key_pair(tmp_path)
    path = tmp_path / "bundle"
    shutil.copytree(bundle_factory("onnxruntime", "fp32").path, path)
    sign_bundle(path, private)
    return path, public


def test_a_signed_bundle_loads_where_its_key_is_trusted(signed, trusting):
    path, public = signed
    trusting(public)
    assert Bundle.read(path).signed_by
    with open_engine(path) as engine:
        engine.infer()


@pytest.mark.parametrize("change", [_rename_a_class, _swap_the_model])
def test_a_forged_bundle_passes_the_checksums_but_not_the_signature(signed, trusting, change):
    path, public = signed
    _forge(path, change)
    assert Bundle.read(path).manifest  # checksums recomputed: without trust it loads (what they cannot catch)
    trusting(public)
    with pytest.raises(BundleError, match="signature does not match"):
        Bundle.read(path)


def test_unsigned_bundles_and_other_keys_are_refused(signed, bundle_factory, tmp_path, trusting):
    path, _ = signed
    _, stranger = _key_pair(tmp_path, "stranger")
    trusting(stranger)
    with pytest.raises(BundleError, match="signed by a key this process does not trust"):
        open_engine(path)
    with pytest.raises(BundleError, match="not signed"):
        open_engine(bundle_factory("onnxruntime", "fp32").path)
    (path / SIGNATURE_FILE).write_text("{not json")
    with pytest.raises(BundleError, match="not a signature edgeseg wrote"):
        open_engine(path)


def test_a_key_that_is_not_an_ed25519_pem_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pub"
    bad.write_text("-----BEGIN PUBLIC KEY-----\nnonsense\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ConfigError, match="not a PEM public key.*openssl genpkey"):
        set_load_policy(LoadPolicy((bad,)))
    with pytest.raises(ConfigError, match="not found"):
        set_load_policy(LoadPolicy((tmp_path / "missing.pub",)))


def test_the_cli_signs_with_an_openssl_key_and_run_trusts_it(bundle_factory, synth_data, tmp_path):
    private, public = tmp_path / "k.pem", tmp_path / "k.pub"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(private)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)], check=True)
    path = tmp_path / "bundle"
    shutil.copytree(bundle_factory("onnxruntime", "fp32").path, path)
    cli = [sys.executable, "-m", "edgeseg"]

    def edgeseg(*args):
        return subprocess.run([*cli, *args], capture_output=True, text=True)

    refused = edgeseg("run", str(path), str(synth_data / "images"), "--trust", str(public), "--max-frames", "3",
                      "--out", str(tmp_path / "out0"))
    assert refused.returncode == 2 and "not signed" in refused.stderr
    assert "signed" in edgeseg("sign", str(path), "--key", str(private)).stdout
    info = edgeseg("info", str(path), "--trust", str(public))
    assert info.returncode == 0 and "signed by trusted key" in info.stdout
    ran = edgeseg("run", str(path), str(synth_data / "images"), "--trust", str(public), "--max-frames", "3",
                  "--out", str(tmp_path / "out1"))
    assert ran.returncode == 0, ran.stderr
