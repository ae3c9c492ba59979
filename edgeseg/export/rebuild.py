"""``edgeseg compile --from BUNDLE -o NEW``: a bundle rebuilt for this machine's runtime from the
bundle alone, with the run side only (no onnx, no torch, no calibration data). It keeps the
precision, the engine options and the parity record measured when the bundle was first built,
and says where it came from. Only backends with a ``rebuild`` function can (OpenVINO)."""

from __future__ import annotations

import platform
import shutil
from datetime import datetime, timezone
from pathlib import Path

import edgeseg
from edgeseg.engines import Bundle, backend_module, open_engine
from edgeseg.engines.bundle import rebuild_command, write_manifest
from edgeseg.engines.trust import check_private_key, sign_bundle
from edgeseg.errors import ConfigError
from edgeseg.export import staging

_OWN_KEYS = ("schema", "schema_version", "files", "manifest_sha256")  # written again by write_manifest


def rebuild_bundle(source: str | Path, output: str | Path, sign_key: str | None = None) -> dict:
    """Rebuild ``source`` into ``output`` for this machine; returns the new manifest."""
    if sign_key:
        check_private_key(Path(sign_key))
    bundle = Bundle.read(source)  # its checksums, not its fingerprint: it was built for another runtime
    module = backend_module(bundle.backend)
    rebuild = getattr(module, "rebuild", None)
    if rebuild is None:
        raise ConfigError(f"a {bundle.backend} bundle cannot be rebuilt from itself", bundle.path,
                          f"rebuild it from its ONNX graph: {rebuild_command(bundle.manifest)}")
    output = Path(output)
    if output.resolve() == bundle.path.resolve():
        raise ConfigError("the rebuilt bundle must go to another folder", output,
                          "give -o a new folder; swap it in once it is checked")
    work = staging.start(output)
    try:
        reference = bundle.manifest["source"].get("reference")
        if reference:
            shutil.copyfile(bundle.file(reference), work / reference)
        engine_info = rebuild(bundle, work)
        manifest = write_manifest(work, _carried_manifest(bundle, engine_info, module.fingerprint(engine_info)))
        if sign_key:
            sign_bundle(work, Path(sign_key))
        with open_engine(work) as engine:  # it loads and runs here, as the runtime will load it
            engine.infer()
        staging.finish(work, output)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return manifest


def _carried_manifest(bundle: Bundle, engine_info: dict, fingerprint: dict) -> dict:
    old = bundle.manifest
    manifest = {k: v for k, v in old.items() if k not in _OWN_KEYS}
    backend = bundle.backend
    manifest.update(
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"), engine=engine_info, fingerprint=fingerprint,
        built_with={"edgeseg": edgeseg.__version__, "python": platform.python_version(),
                    backend: backend_module(backend).version()},
        rebuilt_from={"path": str(bundle.path), "manifest_sha256": old["manifest_sha256"], "created": old["created"],
                      "fingerprint": old["fingerprint"], "built_with": old.get("built_with", {})},
        notes=[*old.get("notes", []), f"rebuilt with {backend} {fingerprint.get(backend)} from a bundle built with "
               f"{old['fingerprint'].get(backend)}; the parity record is the original build's"])
    return manifest
