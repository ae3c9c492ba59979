"""The Engine contract (preallocated, zero-copy, allocation-free IO; throughput mode) and the
checks made when a bundle is loaded."""

import json
import subprocess
import sys

import numpy as np
import pytest

from edgeseg.data.frames import load_frames
from edgeseg.engines import backend_module, open_engine
from edgeseg.engines.bundle import MANIFEST, Bundle, fingerprint_differences, write_manifest
from edgeseg.engines.tensorrt_engine import profile_shapes
from edgeseg.errors import BundleError, ConfigError, EngineError

BACKENDS = ["openvino", "onnxruntime"]


@pytest.fixture(scope="module")
def frames(synth_data):
    return load_frames(synth_data, 1, 64, 64, 24, split="val").frames


@pytest.mark.parametrize("backend", BACKENDS)
def test_infer_fills_the_preallocated_buffers_in_place(bundle_factory, frames, backend):
    with open_engine(bundle_factory(backend, "fp32").path) as engine:
        buffers = (engine.input, engine.mask, engine.confidence)
        assert all(b.flags.c_contiguous for b in buffers)
        results = []
        for frame in frames[:3]:
            engine.input[:] = frame
            engine.infer()
            results.append((engine.mask.copy(), engine.confidence.copy()))
        assert all(a is b for a, b in zip((engine.input, engine.mask, engine.confidence), buffers, strict=True))
        assert any((c != results[0][1]).any() for _, c in results[1:])  # the outputs follow the input
        engine.input[:] = frames[0]
        engine.infer()
        np.testing.assert_array_equal(engine.mask, results[0][0])
        np.testing.assert_array_equal(engine.confidence, results[0][1])


# Measured in a fresh process, as the runtime runs: the test process's own threads (pytest,
# progress monitors, executors left by other tests) allocate at random moments.
_ALLOCATION_PROBE = """
import gc, json, sys, tracemalloc
import numpy as np
from edgeseg.engines import open_engine

engine = open_engine(sys.argv[1])
frames = np.random.default_rng(0).integers(0, 256, (8, *engine.input.shape[1:]), dtype=np.uint8)
for i in range(20):
    engine.input[:] = frames[i % 8]
    engine.infer()
gc.collect()
gc.disable()  # cyclic garbage counts too, instead of vanishing at a random collection
tracemalloc.start()
for i in range(200):  # one-time caches of the bindings fill while traced
    engine.input[:] = frames[i % 8]
    engine.infer()
start, _ = tracemalloc.get_traced_memory()
tracemalloc.reset_peak()
kept = []
for window in range(2):  # a per-frame allocation grows in every window; a late one-time cache in one
    before, _ = tracemalloc.get_traced_memory()
    for i in range(300):
        engine.input[:] = frames[i % 8]
        engine.infer()
    kept.append(tracemalloc.get_traced_memory()[0] - before)
_, peak = tracemalloc.get_traced_memory()
print(json.dumps({"kept": min(kept), "windows": kept, "peak": peak - start,
                  "smallest_buffer": min(engine.mask.nbytes, engine.confidence.nbytes)}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_frame_allocates_nothing_after_warm_up(bundle_factory, backend):
    path = bundle_factory(backend, "fp32", size=128).path
    out = subprocess.run([sys.executable, "-c", _ALLOCATION_PROBE, str(path)], capture_output=True, text=True,
                         check=True)
    measured = json.loads(out.stdout)
    # A new mask (16 kB) or confidence (64 kB) per frame would show in the peak and, kept, in the
    # growth; what remains is the few small Python objects a backend call creates and frees.
    assert measured["smallest_buffer"] >= 16384
    assert measured["peak"] < 8192, measured
    assert measured["kept"] < 1024, measured  # in 300 frames: not even 4 bytes a frame


@pytest.mark.parametrize("backend", BACKENDS)
def test_throughput_mode_gives_each_frame_its_own_result(bundle_factory, frames, backend):
    path = bundle_factory(backend, "fp32").path
    with open_engine(path) as single:
        expected = []
        for frame in frames:
            single.input[:] = frame
            single.infer()
            expected.append(single.confidence.copy())
    with open_engine(path, requests=3) as engine:
        got, slot_frame = {}, {}

        def done(slot):
            got[slot_frame[slot]] = engine.confidences[slot].copy()

        for index, frame in enumerate(frames):
            slot = engine.acquire()
            engine.inputs[slot][:] = frame
            slot_frame[slot] = index
            engine.submit(slot, done)
        engine.drain()
    assert sorted(got) == list(range(len(frames)))
    for index, confidence in got.items():
        np.testing.assert_allclose(confidence, expected[index], atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failing_result_handler_is_raised_to_the_caller_and_frees_its_slot(bundle_factory, frames, backend):
    path = bundle_factory(backend, "fp32").path
    with open_engine(path, requests=2) as engine:
        def fail(slot):
            raise ValueError(f"handler failed on slot {slot}")

        engine.submit(engine.acquire(), fail)
        with pytest.raises(ValueError, match="handler failed"):
            engine.drain()
        done = []
        slots = [engine.acquire(), engine.acquire()]  # both slots are free again
        assert sorted(slots) == [0, 1]
        for slot in slots:
            engine.inputs[slot][:] = frames[0]
            engine.submit(slot, done.append)
        engine.drain()
        assert sorted(done) == [0, 1]


def test_openvino_binds_our_arrays_without_copies(bundle_factory):
    with open_engine(bundle_factory("openvino", "fp32").path) as engine:
        request = engine._requests[0]
        assert np.shares_memory(request.get_tensor("frames").data, engine.input)
        assert np.shares_memory(request.get_tensor("mask").data, engine.mask)
        assert np.shares_memory(request.get_tensor("confidence").data, engine.confidence)


def test_openvino_runs_fp32_bundles_at_fp32_not_the_cpus_bf16_default(bundle_factory):
    with open_engine(bundle_factory("openvino", "fp32").path) as engine:
        import openvino as ov
        assert engine.compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32


def test_runtime_options_override_and_unknown_ones_are_refused(bundle_factory):
    path = bundle_factory("openvino", "fp32").path
    with open_engine(path, hint="throughput", threads=1) as engine:
        assert str(engine.compiled.get_property("PERFORMANCE_HINT")).upper().endswith("THROUGHPUT")
    with pytest.raises(ConfigError, match="no option"):
        open_engine(path, cuda_graph=False)


def test_static_bundles_refuse_other_sizes(bundle_factory):
    with pytest.raises(EngineError, match="static input"):
        open_engine(bundle_factory("onnxruntime", "fp32").path, height=128)


# --- refusals on load -------------------------------------------------------------------------

def _copy(bundle_factory, tmp_path, backend="onnxruntime"):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(bundle_factory(backend, "fp32").path, target)
    return target


def test_a_model_file_edited_after_build_is_refused(bundle_factory, tmp_path):
    path = _copy(bundle_factory, tmp_path)
    data = bytearray((path / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="changed after the bundle was built"):
        open_engine(path)


def test_a_truncated_or_missing_file_is_refused(bundle_factory, tmp_path):
    path = _copy(bundle_factory, tmp_path)
    (path / "model.onnx").write_bytes((path / "model.onnx").read_bytes()[:1000])
    with pytest.raises(BundleError, match="checksum mismatch"):
        open_engine(path)
    (path / "model.onnx").unlink()
    with pytest.raises(BundleError, match="missing"):
        open_engine(path)


def test_an_edited_or_truncated_manifest_is_refused(bundle_factory, tmp_path):
    path = _copy(bundle_factory, tmp_path)
    manifest = json.loads((path / MANIFEST).read_text())
    manifest["precision"] = "int8"
    (path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="manifest was edited"):
        open_engine(path)
    (path / MANIFEST).write_text(json.dumps(manifest)[:200])
    with pytest.raises(BundleError, match="not valid JSON"):
        open_engine(path)
    (path / MANIFEST).unlink()
    with pytest.raises(BundleError, match="not an edgeseg bundle"):
        open_engine(path)


@pytest.mark.parametrize("backend, key", [("openvino", "openvino"), ("onnxruntime", "onnxruntime")])
def test_a_bundle_from_a_newer_backend_version_is_refused_with_the_rebuild_command(bundle_factory, tmp_path,
                                                                                     backend, key):
    path = _copy(bundle_factory, tmp_path, backend)
    manifest = json.loads((path / MANIFEST).read_text())
    newer = f"{backend_module(backend).version().split('.')[0]}.999.0"
    manifest["fingerprint"][key] = newer
    for k in ("schema", "schema_version", "files", "manifest_sha256"):
        manifest.pop(k)
    write_manifest(path, manifest)  # rebuilt consistently, as another machine would have
    with pytest.raises(BundleError) as caught:
        open_engine(path)
    message = str(caught.value)
    assert f"{key}: built with '{newer}', here '{backend_module(backend).version()}'" in message
    rebuild = f"compile --from {path}" if backend == "openvino" else f"--backend {backend}"
    assert "edgeseg compile" in message and rebuild in message and "--allow-version-mismatch" in message


def test_fingerprint_differences_name_every_field_that_differs():
    built = {"tensorrt": "10.3.0", "cuda_runtime": 12060, "gpu": "Orin", "compute_capability": "8.7"}
    here = {**built, "tensorrt": "11.0.0", "compute_capability": "9.0"}
    assert fingerprint_differences(built, here) == [
        "compute_capability: built with '8.7', here '9.0'", "tensorrt: built with '10.3.0', here '11.0.0'"]
    assert fingerprint_differences(built, dict(built)) == []


# --- TensorRT: what runs without a GPU --------------------------------------------------------

def test_a_tensorrt_bundle_without_tensorrt_is_a_clear_error(bundle_factory, tmp_path, without_tensorrt):
    path = _copy(bundle_factory, tmp_path)
    manifest = json.loads((path / MANIFEST).read_text())
    manifest.update(backend="tensorrt", engine={"files": ["model.plan"], "options": {}},
                    fingerprint={"tensorrt": "10.3.0", "cuda_runtime": 12060, "gpu": "Orin",
                                 "compute_capability": "8.7"})
    for k in ("schema", "schema_version", "files", "manifest_sha256"):
        manifest.pop(k)
    (path / "model.plan").write_bytes(b"plan")
    write_manifest(path, manifest)
    assert Bundle.read(path).backend == "tensorrt"  # the manifest itself is fine
    with pytest.raises(EngineError, match="TensorRT is not installed"):
        open_engine(path)


def test_compiling_for_tensorrt_without_tensorrt_fails_cleanly_and_leaves_nothing(exported_graph, synth_data, tmp_path,
                                                                                   without_tensorrt):
    from edgeseg.export.compile import CompileOptions, compile_bundle

    with pytest.raises(EngineError, match="TensorRT is not installed"):
        compile_bundle(CompileOptions(str(exported_graph), str(tmp_path / "b"), backend="tensorrt",
                                      precision="fp16", data=str(synth_data)), False)
    assert list(tmp_path.iterdir()) == []


def test_tensorrt_refuses_bf16_and_unknown_options():
    trt = backend_module("tensorrt")
    assert "bf16" not in trt.PRECISIONS
    with pytest.raises(ConfigError, match="no option"):
        trt._options({}, {"hint": "latency"})


def test_tensorrt_profile_spans_the_trained_size():
    low, opt, high = profile_shapes(["batch", "height", "width", 1], 256, 256, 2.0)
    assert opt == (1, 256, 256, 1)
    assert low == (1, 64, 64, 1) and high == (8, 512, 512, 1)
    assert all(d % 32 == 0 for shape in (low, high) for d in shape[1:3])


def test_an_int8_gain_is_reported_as_a_gain_not_a_negative_loss():
    from edgeseg.engines.accuracy import AccuracyReport, gate

    better = AccuracyReport(10, 0.99, {"miou": 0.5016}, {"miou": 0.5}, "val")
    passed, rule = gate(better, "int8")
    assert passed and "gained 0.16" in rule and "lost -" not in rule


@pytest.mark.parametrize("name", ["openvino", "onnxruntime", "tensorrt"])
def test_every_backend_module_offers_the_backend_contract(name):
    import inspect

    from edgeseg.engines.backend import Backend

    module = backend_module(name)
    assert module.NAME == name
    assert set(module.PRECISIONS) <= {"fp32", "fp16", "bf16", "int8"} and isinstance(module.DEFAULT_OPTIONS, dict)
    for function in ("version", "fingerprint", "build", "load"):
        wanted = list(inspect.signature(getattr(Backend, function)).parameters)[1:]  # without self
        assert list(inspect.signature(getattr(module, function)).parameters) == wanted, function


def _rewrite_manifest(path, change):
    """The bundle's manifest changed and signed again, as an older or newer edgeseg would write it."""
    from edgeseg.engines.bundle import _body_checksum

    manifest = json.loads((path / MANIFEST).read_text())
    change(manifest)
    manifest["manifest_sha256"] = _body_checksum(manifest)
    (path / MANIFEST).write_text(json.dumps(manifest))


def test_a_manifest_without_what_the_runtime_reads_is_refused_by_key(bundle_factory, tmp_path):
    path = _copy(bundle_factory, tmp_path)
    _rewrite_manifest(path, lambda m: m.pop("input"))
    with pytest.raises(BundleError, match=r"manifest lacks what edgeseg reads \(input: missing\)"):
        Bundle.read(path)


def test_a_manifest_from_a_newer_edgeseg_is_refused(bundle_factory, tmp_path):
    path = _copy(bundle_factory, tmp_path)
    _rewrite_manifest(path, lambda m: m.update(schema_version=99))
    with pytest.raises(BundleError, match="schema version 99 is newer"):
        Bundle.read(path)


def test_an_older_manifest_is_upgraded_step_by_step_before_it_is_checked(bundle_factory, tmp_path, monkeypatch):
    from edgeseg.engines import manifest as schema

    path = _copy(bundle_factory, tmp_path)
    # as if this edgeseg read schema 3, whose steps renamed "notes" (1 -> 2) and added "origin" (2 -> 3)
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(schema, "MIGRATIONS", {
        1: lambda m: {**{k: v for k, v in m.items() if k != "notes"}, "remarks": m.get("notes", [])},
        2: lambda m: {**m, "origin": "migrated"}})
    bundle = Bundle.read(path)
    assert bundle.manifest["schema_version"] == 3 and bundle.manifest["origin"] == "migrated"
    assert "notes" not in bundle.manifest and "remarks" in bundle.manifest
    monkeypatch.setattr(schema, "MIGRATIONS", {2: schema.MIGRATIONS[2]})  # a step missing
    with pytest.raises(BundleError, match="older than any this edgeseg can upgrade"):
        Bundle.read(path)


@pytest.mark.gpu
@pytest.mark.tensorrt
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_a_tensorrt_bundle_builds_runs_and_proves_itself_on_a_gpu(bundle_factory, synth_data, precision):
    """Where TensorRT and a GPU are (a Jetson, a GPU server): what CI here cannot run."""
    result = bundle_factory("tensorrt", precision)
    assert result.manifest["fingerprint"]["tensorrt"] and result.manifest["fingerprint"]["compute_capability"]
    assert result.passed or precision == "int8"
    frames = load_frames(synth_data, 1, 64, 64, 8, split="val")
    with open_engine(result.path, requests=2) as engine:
        engine.input[:] = frames.frames[:1]
        engine.infer()
        latency_mask = engine.mask.copy()
        request = engine.acquire()
        engine.inputs[request][:] = frames.frames[:1]
        done = []
        engine.submit(request, done.append)
        engine.drain()
        assert done == [request] and np.array_equal(engine.masks[request], latency_mask)


def _masks(bundle, frames):
    """The bundle's masks of the frames, and the cache folder its engine used."""
    from edgeseg.engines.accuracy import run_frames

    with open_engine(bundle) as engine:
        return run_frames(engine, frames), engine.cache_dir


def test_a_tampered_or_foreign_model_cache_never_runs(bundle_factory, synth_data, caplog):
    from edgeseg.engines import model_cache

    frames = load_frames(synth_data, 1, 64, 64, 16, split="val").frames
    bundle = bundle_factory("openvino", "fp32").path
    clean, folder = _masks(bundle, frames)
    assert folder.is_relative_to(model_cache.cache_root()) and (folder / model_cache.RECORD).is_file()
    assert not (bundle / "cache").exists()  # the cache lives outside the bundle, with its record
    blob = max((p for p in folder.iterdir() if p.name != model_cache.RECORD), key=lambda p: p.stat().st_size)
    data = bytearray(blob.read_bytes())
    for i in range(200):  # 200 flipped bytes, as a failing disk would leave them
        data[len(data) // 3 + 97 * i] ^= 0x5A
    blob.write_bytes(bytes(data))
    assert np.array_equal(_masks(bundle, frames)[0], clean)
    assert "checksum mismatch" in caplog.text and "compiled again" in caplog.text
    (folder / "other-model.blob").write_bytes(b"a cache another model left")  # a file the record does not know
    caplog.clear()
    assert np.array_equal(_masks(bundle, frames)[0], clean)
    assert "not the ones recorded" in caplog.text and not (folder / "other-model.blob").exists()
