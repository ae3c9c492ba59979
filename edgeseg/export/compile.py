"""``edgeseg compile``: an exported ONNX graph -> a checked bundle for one backend and precision.

Steps: read the graph and its edgeseg metadata; make the precision graph (fp16, int8 from
calibration frames); let the backend build its files in a temporary folder; write the manifest;
load the engine from that folder exactly as the runtime will; run it and the fp32 reference on
validation frames (the parity gate); then rename the folder into place. An int8 graph that fails
the gate is quantized once more with more of it in float (precision.INT8_RECIPES). Below the
gate nothing is written unless forced, and a forced bundle says so in its manifest.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx

import edgeseg
from edgeseg.data.frames import FrameSet, is_dataset, load_frames
from edgeseg.engines import PRECISIONS, backend_module, open_engine
from edgeseg.engines.accuracy import AccuracyReport, ReferenceEngine, gate, measure, run_frames
from edgeseg.engines.bundle import sha256_file, write_manifest
from edgeseg.engines.trust import check_private_key, sign_bundle
from edgeseg.errors import ConfigError, ExportError, first_line
from edgeseg.export import staging
from edgeseg.export.head import confidence_without_softmax
from edgeseg.export.precision import INT8_RECIPES, MIN_CALIBRATION_FRAMES, fp16_graph, int8_graph

REFERENCE_FILE = "reference.onnx"


@dataclass
class CompileOptions:
    onnx: str
    output: str
    backend: str = "openvino"
    precision: str = "fp32"
    calib: str | None = None  # data set folder or folder of frames, for int8
    calib_frames: int = MIN_CALIBRATION_FRAMES
    data: str | None = None  # validation data set for the parity gate; default: the calibration frames
    split: str = "val"
    val_frames: int | None = None  # frames of the split the gate measures (None: all of them)
    force: bool = False
    accuracy_control: bool = False  # int8: keep in float the layers whose quantization costs mIoU (slow)
    options: dict = field(default_factory=dict)  # backend options (hint, threads, streams, ...)
    sign_key: str | None = None  # Ed25519 private key (PEM) that signs the manifest (engines/trust.py)


@dataclass
class CompileResult:
    path: Path
    manifest: dict
    accuracy: AccuracyReport
    passed: bool
    rule: str
    warnings: list[str]


def read_graph(path: Path) -> tuple[onnx.ModelProto, dict]:
    """The ONNX graph and its edgeseg metadata, refusing what is corrupt or not ours."""
    if not path.is_file():
        raise ExportError("ONNX file not found", path, "export one with edgeseg export CKPT -o model.onnx")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as e:
        raise ExportError(f"not a readable ONNX graph ({first_line(e)})", path,
                          "the file is truncated or corrupt: export it again") from None
    props = {p.key: p.value for p in model.metadata_props}
    if "edgeseg.input" not in props:
        raise ExportError("this ONNX graph was not exported by edgeseg (no edgeseg metadata)", path,
                          "export it with edgeseg export, which folds in pre- and post-processing")
    meta = {k.removeprefix("edgeseg."): json.loads(v) if k != "edgeseg.version" else v for k, v in props.items()
            if k.startswith("edgeseg.")}
    return model, meta


def _versions() -> dict:
    versions = {"edgeseg": edgeseg.__version__, "python": platform.python_version(), "onnx": onnx.__version__}
    for name in ("onnxruntime", "openvino", "nncf", "tensorrt"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", None) or getattr(module, "get_version", lambda: "")()
    return versions


def _frames(opts: CompileOptions, spec: dict, note) -> tuple[FrameSet | None, FrameSet]:
    """(calibration frames or None, validation frames)."""
    channels, height, width = spec["channels"], spec["height"], spec["width"]
    depth = spec.get("bit_depth", 16)  # 16-bit frames scaled as the model was trained
    calib = None
    if opts.precision == "int8":
        if not opts.calib:
            raise ConfigError("int8 needs calibration frames",
                              fix="give --calib DIR (a data set or a folder of frames)")
        if opts.accuracy_control and not is_dataset(Path(opts.calib)):
            raise ConfigError("accuracy control measures mIoU, so --calib must be a labelled data set",
                              opts.calib, "give a data set folder (images/, masks/, classes.csv)")
        calib = load_frames(opts.calib, channels, height, width, opts.calib_frames, split="train",
                            with_masks=opts.accuracy_control, bit_depth=depth)
        if len(calib) < MIN_CALIBRATION_FRAMES:
            note(f"only {len(calib)} calibration frames (at least {MIN_CALIBRATION_FRAMES} are advised): "
                         "int8 ranges may not cover what the camera shows")
    elif opts.calib and opts.data:
        note(f"--calib is only used for int8, not {opts.precision}")
    source = opts.data or opts.calib
    if not source:
        raise ConfigError("the parity gate needs real frames",
                          fix="give --data DIR (a labelled data set) or --calib DIR")
    labelled = is_dataset(Path(source))
    val = load_frames(source, channels, height, width, opts.val_frames,
                      split=opts.split if opts.data else "val", with_masks=labelled, require_split=bool(opts.data),
                      bit_depth=depth)
    return calib, val


def _build_and_prove(opts: CompileOptions, module, model: onnx.ModelProto, meta: dict, calib: FrameSet | None,
                     val: FrameSet, reference_masks: np.ndarray, work: Path, recipe: str | None,
                     show_progress: bool) -> tuple[dict, AccuracyReport]:
    """Make the precision graph, build the backend's engine in ``work``, write its manifest and
    measure it against the fp32 reference's masks of the validation frames."""
    spec = meta["input"]
    graph_path = work / "graph.onnx"
    if opts.precision == "fp16":
        onnx.save(fp16_graph(model), str(graph_path))
    elif opts.precision == "int8":
        batch = spec["shape"][0] if isinstance(spec["shape"][0], int) else 1
        onnx.save(int8_graph(model, calib.frames, spec["name"], batch, calib.truth, len(meta["classes"]), recipe),
                  str(graph_path))
    else:
        shutil.copyfile(opts.onnx, graph_path)
    if getattr(module, "SOFTMAX_FREE_HEAD", False):  # docs/decisions/0005-onnxruntime-head-rewrite.md
        rewritten, _ = confidence_without_softmax(onnx.load(str(graph_path)))
        onnx.save(rewritten, str(graph_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine_info = module.build(graph_path, work, opts.precision, dict(opts.options), spec)
    graph_path.unlink()  # built into the backend's own files
    source = Path(opts.onnx)
    manifest = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "backend": opts.backend, "precision": opts.precision,
        "classes": meta["classes"], "input": spec, "outputs": meta["outputs"], "model": meta["model"],
        "source": {"onnx": str(source), "sha256": sha256_file(source), "reference": REFERENCE_FILE},
        "engine": engine_info,
        "fingerprint": module.fingerprint(engine_info),
        "calibration": ({"frames": len(calib), "source": calib.source, "recipe": recipe,
                         "accuracy_control": opts.accuracy_control} if calib is not None else None),
    }
    write_manifest(work, manifest)
    with open_engine(work) as engine:
        engine_masks = run_frames(engine, val.frames, show_progress, f"{opts.backend} {opts.precision}")
    return manifest, measure(engine_masks, reference_masks, val, [c["name"] for c in meta["classes"]])


def compile_bundle(opts: CompileOptions, show_progress: bool = True, warn=None) -> CompileResult:
    """Build, prove and write a bundle. ``warn(text)`` is told of anything worth a warning as it happens."""
    if opts.precision not in PRECISIONS:
        raise ConfigError(f"unknown precision '{opts.precision}'", fix=f"choose one of {', '.join(PRECISIONS)}")
    module = backend_module(opts.backend)
    if opts.precision not in module.PRECISIONS:
        raise ConfigError(f"{opts.backend} does not take precision {opts.precision}",
                          fix=f"{opts.backend} takes {', '.join(module.PRECISIONS)}")
    source = Path(opts.onnx)
    model, meta = read_graph(source)
    notes: list[str] = []

    def note(text: str) -> None:
        notes.append(text)
        if warn is not None:
            warn(text)

    calib, val = _frames(opts, meta["input"], note)
    if opts.sign_key:
        check_private_key(Path(opts.sign_key))  # before minutes of work, not after
    output = Path(opts.output)
    work = staging.start(output)
    try:
        shutil.copyfile(source, work / REFERENCE_FILE)
        # the fp32 reference's masks are the same for every recipe tried
        with ReferenceEngine(work / REFERENCE_FILE, val.frames.shape[1:]) as reference:
            reference_masks = run_frames(reference, val.frames, show_progress, "fp32 reference")

        def build(recipe: str | None) -> tuple[dict, AccuracyReport]:
            return _build_and_prove(opts, module, model, meta, calib, val, reference_masks, work, recipe,
                                    show_progress)

        manifest, accuracy, passed, rule = _first_recipe_that_passes(opts.precision, build, work, note)
        if not passed and not opts.force:
            raise ExportError(f"parity gate failed: {rule}", output,
                              "no bundle written; try another precision or more calibration frames, "
                              "or --force to keep it anyway")
        manifest["parity"] = {**accuracy.to_dict(), "rule": rule, "passed": passed, "forced": not passed}
        manifest["notes"] = notes
        manifest["built_with"] = _versions()  # now that every library the build and gate used is loaded
        manifest = write_manifest(work, manifest)
        if opts.sign_key:
            sign_bundle(work, Path(opts.sign_key))
        staging.finish(work, output)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return CompileResult(output, manifest, accuracy, passed, rule, notes)


def _first_recipe_that_passes(precision: str, build, work: Path, note) -> tuple[dict, AccuracyReport, bool, str]:
    """Build with each recipe in turn (int8 has two) until one passes the gate; the last one is
    kept either way. Returns its manifest, accuracy, whether it passed and the gate's rule."""
    recipes = INT8_RECIPES if precision == "int8" else (None,)
    for recipe in recipes:
        manifest, accuracy = build(recipe)
        passed, rule = gate(accuracy, precision)
        if passed or recipe == recipes[-1]:
            break
        note(f"int8 ({recipe} recipe) failed the gate: {rule}; quantizing again with the "
             f"{recipes[recipes.index(recipe) + 1]} recipe")
        for path in work.iterdir():  # the failed engine's files; the reference stays
            if path.is_dir():
                shutil.rmtree(path)
            elif path.name != REFERENCE_FILE:
                path.unlink()
    return manifest, accuracy, passed, rule
