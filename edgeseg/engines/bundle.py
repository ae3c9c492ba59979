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
from edgeseg.engines.trust import SIGNATURE_FILE, check_signature, load_policy
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
        if rel not in (MANIFEST, SIGNATURE_FILE) and not rel.startswith(CACHE_DIR + "/"):
            files[rel] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    manifest = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **manifest, "files": files}
    manifest["manifest_sha256"] = _body_checksum(manifest)
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


# fingerprint keys that name a runtime whose files load on a newer release of the same major version
# (an OpenVINO IR, an ONNX graph); anything else in a fingerprint (TensorRT, CUDA, the GPU) must match
FORWARD_COMPATIBLE = ("openvino", "onnxruntime")


def _differing(built: dict, here: dict) -> list[str]:
    return [key for key in sorted(set(built) | set(here)) if built.get(key) != here.get(key)]


def _difference(key: str, built: dict, here: dict) -> str:
    return f"{key}: built with {built.get(key)!r}, here {here.get(key)!r}"


def fingerprint_differences(built: dict, here: dict) -> list[str]:
    """Human-readable differences between the fingerprint a bundle was built with and this machine's."""
    return [_difference(key, built, here) for key in _differing(built, here)]


def release(version: object) -> tuple[int, ...]:
    """'2026.4.1-22982-e213a14' -> (2026, 4, 1): the leading numbers of a version string."""
    numbers = []
    for part in str(version).split("-")[0].split("."):
        if not part.isdigit():
            break
        numbers.append(int(part))
    return tuple(numbers)


def loads_forward(key: str, built: object, here: object) -> bool:
    """Whether files built with runtime ``key`` at ``built`` load on ``here``: same major, not older."""
    old, new = release(built), release(here)
    return key in FORWARD_COMPATIBLE and bool(old) and bool(new) and old[0] == new[0] and new >= old


def rebuild_here_command(path: Path, manifest: dict) -> str:
    """How to rebuild a bundle for this machine's runtime: from the bundle itself where the backend
    can (OpenVINO, with the run side only), else from the ONNX graph."""
    if manifest.get("backend") == "openvino" and manifest.get("source", {}).get("reference"):
        return f"edgeseg compile --from {path} -o NEW_BUNDLE"
    return rebuild_command(manifest)


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
    signed_by: str | None = None  # the id of the trusted key that signed it, where the process asks for one

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
        raw = manifest_path.read_bytes()
        try:
            manifest = json.loads(raw)
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
        trusted = load_policy().trusted_keys
        if trusted:  # after the checksums, so that a damaged copy is reported as one, not as a forgery
            bundle.signed_by = check_signature(path, raw, trusted)
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

    def check_fingerprint(self, here: dict, allow_mismatch: bool = False) -> list[str]:
        """Refuse a bundle built for another setup; return warnings for what loads anyway: a newer
        release of the same major version of OpenVINO or ONNX Runtime, or, with ``allow_mismatch``,
        any difference."""
        built = self.manifest["fingerprint"]
        keys = _differing(built, here)
        forward = [_difference(k, built, here) for k in keys if loads_forward(k, built.get(k), here.get(k))]
        refused = [_difference(k, built, here) for k in keys if not loads_forward(k, built.get(k), here.get(k))]
        if refused and not allow_mismatch:
            raise BundleError(f"built for another {self.backend} setup ({'; '.join(refused)})", self.path,
                              f"rebuild it on this machine: {rebuild_here_command(self.path, self.manifest)}, "
                              "or load it anyway with --allow-version-mismatch")
        warnings = [f"{self.path}: built with a different {self.backend} ({d}); it loads on this newer release, "
                    f"and {rebuild_here_command(self.path, self.manifest)} makes it this release's own"
                    for d in forward]
        return warnings + [f"{self.path}: loaded despite a different setup ({d}), as --allow-version-mismatch asks"
                           for d in refused]
