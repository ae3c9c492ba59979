"""The bundle: a directory with the compiled model files and ``manifest.json``.

The manifest says what the engine takes and gives, which backend and precision built it, the
fingerprint of the software and hardware the compiled files depend on, the parity and accuracy
figures measured when it was built, and the sha256 of every file. Opening a bundle checks all of
that and refuses a mismatch with a message that says what to do.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from edgeseg.engines.manifest import SCHEMA, SCHEMA_VERSION, check_manifest, upgrade_to_latest
from edgeseg.errors import BundleError

MANIFEST = "manifest.json"
CACHE_DIR = "cache"  # backend caches built on first load: derived, so not checksummed


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _body_checksum(manifest: dict) -> str:
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def write_manifest(directory: Path, manifest: dict) -> dict:
    """Checksum every file in the directory (but the cache) and write the manifest."""
    files = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory).as_posix()
        if rel != MANIFEST and not rel.startswith(CACHE_DIR + "/"):
            files[rel] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    manifest = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **manifest, "files": files}
    manifest["manifest_sha256"] = _body_checksum(manifest)
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def fingerprint_differences(built: dict, here: dict) -> list[str]:
    """Human-readable differences between the fingerprint a bundle was built with and this machine's."""
    return [f"{key}: built with {built.get(key)!r}, here {here.get(key)!r}"
            for key in sorted(set(built) | set(here)) if built.get(key) != here.get(key)]


def rebuild_command(manifest: dict) -> str:
    source = manifest.get("source", {}).get("onnx", "model.onnx")
    backend, precision = manifest.get("backend", "BACKEND"), manifest.get("precision", "PRECISION")
    cmd = f"edgeseg compile {source} --backend {backend} --precision {precision}"
    if manifest.get("calibration"):
        cmd += " --calib DIR"
    return cmd + " -o BUNDLE"


@dataclass
class Bundle:
    path: Path
    manifest: dict

    @property
    def backend(self) -> str:
        return self.manifest["backend"]

    @property
    def precision(self) -> str:
        return self.manifest["precision"]

    def file(self, name: str) -> Path:
        return self.path / name

    @classmethod
    def read(cls, path: str | Path) -> Bundle:
        """Read and check the manifest and every file's checksum (not the fingerprint)."""
        path = Path(path)
        manifest_path = path / MANIFEST
        if not path.is_dir():
            raise BundleError("bundle folder not found", path, "build one with edgeseg compile")
        if not manifest_path.is_file():
            raise BundleError(f"no {MANIFEST}: not an edgeseg bundle, or its build did not finish", path,
                              "build it again with edgeseg compile")
        try:
            manifest = json.loads(manifest_path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BundleError(f"manifest is not valid JSON ({e})", manifest_path,
                              "the file is truncated or corrupt: build the bundle again") from None
        if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
            raise BundleError("not an edgeseg bundle manifest", manifest_path, "build one with edgeseg compile")
        if manifest.get("manifest_sha256") != _body_checksum(manifest):
            raise BundleError("the manifest was edited after the bundle was built", manifest_path,
                              f"rebuild it: {rebuild_command(manifest)}")
        try:
            manifest = upgrade_to_latest(manifest)
        except ValueError as e:
            raise BundleError(str(e), manifest_path,
                              "rebuild the bundle with this edgeseg, or install the edgeseg that built it") from None
        problem = check_manifest(manifest)
        if problem is not None:
            raise BundleError(f"the manifest lacks what edgeseg reads ({problem})", manifest_path,
                              f"rebuild it: {rebuild_command(manifest)}")
        bundle = cls(path, manifest)
        bundle.verify_files()
        return bundle

    def verify_files(self) -> None:
        for rel, entry in self.manifest["files"].items():
            file = self.path / rel
            if not file.is_file():
                raise BundleError(f"{rel} is missing from the bundle", self.path,
                                  f"copy the whole bundle folder, or rebuild it: {rebuild_command(self.manifest)}")
            if file.stat().st_size != entry["bytes"] or sha256_file(file) != entry["sha256"]:
                raise BundleError(f"{rel} changed after the bundle was built (checksum mismatch)", file,
                                  f"the copy is truncated or edited: copy it again, or rebuild it: "
                                  f"{rebuild_command(self.manifest)}")

    def check_fingerprint(self, here: dict) -> None:
        differences = fingerprint_differences(self.manifest["fingerprint"], here)
        if differences:
            raise BundleError(f"built for another {self.backend} setup ({'; '.join(differences)})", self.path,
                              f"rebuild it on this machine: {rebuild_command(self.manifest)}")
