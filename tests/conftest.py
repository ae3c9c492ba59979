from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
os.environ.setdefault("OMP_NUM_THREADS", "2")

SHARED = Path(os.environ.get("EDGESEG_SHARED", Path(__file__).resolve().parents[2] / "shared"))
MAGNETIC_TILE = SHARED / "datasets" / "magnetic-tile"


@pytest.fixture(scope="session", autouse=True)
def model_cache_dir(tmp_path_factory) -> Path:
    """Compiled-model caches go to a folder of the session's, not the user's ~/.cache."""
    folder = tmp_path_factory.mktemp("model-cache")
    os.environ["EDGESEG_CACHE_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory) -> Path:
    """A small synthetic grayscale data set shared by the tests that only read it."""
    from edgeseg.data.synth import write_synthetic_dataset

    return write_synthetic_dataset(tmp_path_factory.mktemp("synth") / "data", count=40, size=96,
                                   seed=3, show_progress=False)


@pytest.fixture(scope="session")
def trained_run(synth_data, tmp_path_factory):
    """A U-Net trained for two short epochs on the synthetic set: enough to export and compare."""
    from edgeseg.training.config import TrainConfig
    from edgeseg.training.trainer import train

    cfg = TrainConfig(data=str(synth_data), out=str(tmp_path_factory.mktemp("run")), input_size=64, epochs=2,
                      batch_size=8, arch_kwargs={"base": 8}, seed=1)
    return train(cfg, show_progress=False)


def _has_tensorrt() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorrt") is not None


def _has_gpu() -> bool:
    import shutil

    return shutil.which("nvidia-smi") is not None or Path("/dev/nvidia0").exists()


def pytest_runtest_setup(item):
    """A test marked gpu or tensorrt runs where they are, and says why it skipped elsewhere."""
    if item.get_closest_marker("gpu") and not _has_gpu():
        pytest.skip("needs an NVIDIA GPU (none here)")
    if item.get_closest_marker("tensorrt") and not _has_tensorrt():
        pytest.skip("needs TensorRT (not installed here)")


def pytest_collection_modifyitems(items):
    """A test that reads the shared data sets says so by its marker, whichever way it gets them."""
    for item in items:
        if "magnetic_tile" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.shared_data)


@pytest.fixture(scope="session")
def magnetic_tile() -> Path:
    """../shared/datasets/magnetic-tile: skipped where it is missing, except where it is required
    (CI sets EDGESEG_REQUIRE_SHARED=1, so that a missing data set fails there instead of hiding)."""
    if not (MAGNETIC_TILE / "classes.csv").is_file():
        why = f"the shared magnetic-tile data set is missing at {MAGNETIC_TILE}"
        if os.environ.get("EDGESEG_REQUIRE_SHARED") == "1":
            pytest.fail(why + " (EDGESEG_REQUIRE_SHARED=1)")
        pytest.skip(why)
    return MAGNETIC_TILE


@pytest.fixture
def without_tensorrt(monkeypatch):
    """This process as on a machine without TensorRT, whether or not it is installed here."""
    import sys

    monkeypatch.setitem(sys.modules, "tensorrt", None)  # a None entry makes `import tensorrt` raise ImportError


@pytest.fixture(scope="session")
def exported_graph(trained_run, synth_data, tmp_path_factory) -> Path:
    """The trained U-Net exported to ONNX at its 64 px training size."""
    from edgeseg.export.onnx_export import ExportOptions, export_onnx

    out = tmp_path_factory.mktemp("graph") / "model.onnx"
    return export_onnx(ExportOptions(str(trained_run.best_checkpoint), str(out), data=str(synth_data)),
                       show_progress=False).path


@pytest.fixture(scope="session")
def exported_graph_128(trained_run, synth_data, tmp_path_factory) -> Path:
    """The same model exported at 128 px: buffers large enough that a copy of one shows clearly."""
    from edgeseg.export.onnx_export import ExportOptions, export_onnx

    out = tmp_path_factory.mktemp("graph128") / "model.onnx"
    return export_onnx(ExportOptions(str(trained_run.best_checkpoint), str(out), data=str(synth_data),
                                     height=128, width=128), show_progress=False).path


@pytest.fixture(scope="session")
def bundle_factory(exported_graph, exported_graph_128, synth_data, tmp_path_factory):
    """Compile (backend, precision) bundles once per session."""
    from edgeseg.export.compile import CompileOptions, compile_bundle

    built = {}

    def make(backend: str, precision: str, size: int = 64, **options):
        key = (backend, precision, size, tuple(sorted(options.items())))
        if key not in built:
            out = tmp_path_factory.mktemp("bundle") / f"{backend}-{precision}-{size}"
            graph = exported_graph if size == 64 else exported_graph_128
            built[key] = compile_bundle(CompileOptions(
                str(graph), str(out), backend=backend, precision=precision, calib=str(synth_data),
                data=str(synth_data), force=precision == "int8", options=options), show_progress=False)
        return built[key]
    return make


@pytest.fixture(scope="session")
def peers_python() -> Path:
    """The Python of the peers' venv (.ci/run makes .venv-peers with Debian's Python: PyTriton's
    Triton server and OpenVINO Model API, which need NumPy 1.x and OpenCV 4): skipped where it is
    missing, except where it is required (CI sets EDGESEG_REQUIRE_PEERS=1)."""
    root = Path(__file__).resolve().parents[1]
    python = Path(os.environ.get("EDGESEG_PEERS_PYTHON", root / ".venv-peers" / "bin" / "python"))
    if not python.exists():
        why = f"no Python with the peers (PyTriton, Model API) at {python} (.ci/run makes .venv-peers)"
        if os.environ.get("EDGESEG_REQUIRE_PEERS") == "1":
            pytest.fail(why + " (EDGESEG_REQUIRE_PEERS=1)")
        pytest.skip(why)
    return python
