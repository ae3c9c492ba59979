from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")

SHARED = Path(__file__).resolve().parents[2] / "shared"
MAGNETIC_TILE = SHARED / "datasets" / "magnetic-tile"


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


@pytest.fixture(scope="session")
def magnetic_tile() -> Path:
    if not (MAGNETIC_TILE / "classes.csv").is_file():
        pytest.fail(f"the shared magnetic-tile data set is missing at {MAGNETIC_TILE}")
    return MAGNETIC_TILE
