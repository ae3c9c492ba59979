import shutil

import cv2
import numpy as np
import pytest

from edgeseg.cli import main
from edgeseg.data.check import check_dataset
from edgeseg.data.classes import IGNORE_ID


@pytest.fixture
def data_copy(synth_data, tmp_path):
    return shutil.copytree(synth_data, tmp_path / "data")


def test_clean_synthetic_set_passes_with_balance(synth_data, capsys):
    report = check_dataset(synth_data, show_progress=False)
    assert report.ok, report.errors
    assert sum(report.counts.values()) == 40
    assert report.pixels["train"][0] > 0 and report.pixels["train"][1:].sum() > 0
    assert main(["data", "check", str(synth_data)]) == 0
    out = capsys.readouterr().out
    assert "class balance" in out and "crack" in out


def test_every_kind_of_breakage_is_reported(data_copy, capsys):
    stems = sorted(p.stem for p in (data_copy / "images").iterdir())
    (data_copy / "masks" / f"{stems[0]}.png").unlink()  # image without mask
    cv2.imwrite(str(data_copy / "masks" / "orphan.png"), np.zeros((8, 8), np.uint8))  # mask without image
    img = data_copy / "images" / f"{stems[1]}.png"
    img.write_bytes(img.read_bytes()[: len(img.read_bytes()) // 2])  # truncated
    cv2.imwrite(str(data_copy / "masks" / f"{stems[2]}.png"), np.zeros((10, 10), np.uint8))  # wrong size
    mask = cv2.imread(str(data_copy / "masks" / f"{stems[3]}.png"), cv2.IMREAD_UNCHANGED)
    mask[:3, :3] = 9  # unknown id
    mask[5:7, 5:7] = IGNORE_ID  # unlabelled
    cv2.imwrite(str(data_copy / "masks" / f"{stems[3]}.png"), mask)
    shape = cv2.imread(str(data_copy / "masks" / f"{stems[4]}.png"), cv2.IMREAD_UNCHANGED).shape
    colour = np.zeros(shape + (3,), np.uint8)
    colour[0, 0] = (1, 2, 3)  # unknown colour
    cv2.imwrite(str(data_copy / "masks" / f"{stems[4]}.png"), colour)

    report = check_dataset(data_copy, show_progress=False)
    text = "\n".join(report.errors)
    assert "without a mask" in text and stems[0] in text
    assert "without an image" in text and "orphan.png" in text
    assert "truncated" in text and stems[1] in text
    assert "size differs" in text and stems[2] in text
    assert "mask value 9" in text and "9 pixels" in text
    assert "rgb(3, 2, 1)" in text  # written as BGR (1, 2, 3)
    assert any("unlabelled" in w for w in report.warnings)
    assert main(["data", "check", str(data_copy)]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_warnings_alone_exit_zero(data_copy):
    stem = sorted(p.stem for p in (data_copy / "masks").iterdir())[0]
    mask = cv2.imread(str(data_copy / "masks" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
    mask[0, 0] = IGNORE_ID
    cv2.imwrite(str(data_copy / "masks" / f"{stem}.png"), mask)
    report = check_dataset(data_copy, show_progress=False)
    assert report.ok and report.warnings
    assert main(["data", "check", str(data_copy)]) == 0


def test_split_list_naming_a_missing_file_is_an_error(data_copy):
    with open(data_copy / "val.txt", "a") as f:
        f.write("no_such_stem\n")
    report = check_dataset(data_copy, show_progress=False)
    assert any("no_such_stem" in e for e in report.errors)


def test_real_magnetic_tile_set_checks_clean(magnetic_tile):
    report = check_dataset(magnetic_tile, show_progress=False)
    assert report.ok, report.errors
    assert report.counts == {"train": 905, "val": 247}
    # five defect classes, each present in train, all tiny next to the background
    assert (report.images["train"][1:] > 0).all()
    assert report.pixels["train"][0] / report.pixels["train"].sum() > 0.9


def test_training_refuses_what_data_check_calls_an_error_instead_of_leaving_it_out(data_copy, tmp_path):
    from edgeseg.errors import DatasetError
    from edgeseg.training.config import TrainConfig
    from edgeseg.training.trainer import train

    stem = sorted(p.stem for p in (data_copy / "masks").iterdir())[0]
    (data_copy / "masks" / f"{stem}.png").unlink()  # an image whose mask is missing
    with open(data_copy / "val.txt", "a") as f:
        f.write("no_such_stem\n")  # and a split entry with no file
    with pytest.raises(DatasetError) as refused:
        train(TrainConfig(data=str(data_copy), out=str(tmp_path / "run"), input_size=64, epochs=1))
    said = str(refused.value)
    assert f"1 image(s) without a mask in masks/ ({stem}" in said
    assert "1 stem(s) named in val.txt with no image or mask (no_such_stem)" in said
    assert not (tmp_path / "run").exists()  # refused before anything was written
