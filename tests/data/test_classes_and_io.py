import cv2
import numpy as np
import pytest

from edgeseg.data.classes import IGNORE_ID, ClassTable
from edgeseg.data.imageio import colors_to_ids, read_image, read_mask
from edgeseg.errors import DatasetError


def write_table(path, rows):
    path.write_text("id,name,r,g,b\n" + "".join(f"{','.join(map(str, r))}\n" for r in rows))
    return path


def test_class_table_reads_rows_and_ignore_colour(tmp_path):
    table = ClassTable.read_csv(write_table(tmp_path / "c.csv", [(1, "crack", 255, 0, 0), (0, "bg", 0, 0, 0),
                                                                 (255, "ignore", 255, 255, 255)]))
    assert table.names == ["bg", "crack"]
    assert table.ignore_color == (255, 255, 255)
    assert tuple(table.palette_bgr()[1]) == (0, 0, 255)


@pytest.mark.parametrize("rows, message", [
    ([(0, "bg", 0, 0, 0), (2, "crack", 1, 1, 1)], "without gaps"),
    ([(0, "bg", 0, 0, 0), (1, "crack", 0, 0, 0)], "share one colour"),
    ([(0, "bg", 0, 0, 300)], "0..255"),
])
def test_class_table_refuses_bad_tables(tmp_path, rows, message):
    with pytest.raises(DatasetError, match=message):
        ClassTable.read_csv(write_table(tmp_path / "c.csv", rows))


def test_truncated_jpeg_is_refused(tmp_path):
    path = tmp_path / "a.jpg"
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8))
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(DatasetError, match="truncated JPEG"):
        read_image(path)


def test_garbage_file_is_refused(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"\x89PNG not really" + b"IEND" * 4)
    with pytest.raises(DatasetError, match="not a readable image"):
        read_image(path)


def test_16_bit_images_are_scaled_to_8_bit(tmp_path):
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.full((8, 8), 65535, np.uint16))
    image = read_image(path)
    assert image.dtype == np.uint8 and image.max() == 255


def test_colour_masks_map_through_the_table(tmp_path):
    table = ClassTable.read_csv(write_table(tmp_path / "c.csv", [(0, "bg", 0, 0, 0), (1, "crack", 255, 0, 0),
                                                                 (255, "ignore", 255, 255, 255)]))
    mask = np.zeros((4, 4, 3), np.uint8)
    mask[0, 0] = (0, 0, 255)  # BGR red = crack
    mask[1, 1] = (255, 255, 255)  # ignore
    mask[2, 2] = (0, 255, 0)  # green: unknown
    ids, unknown = colors_to_ids(mask, table)
    assert ids[0, 0] == 1 and ids[1, 1] == IGNORE_ID and ids[3, 3] == 0
    assert unknown == {(0, 255, 0): 1}
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    with pytest.raises(DatasetError, match=r"rgb\(0, 255, 0\)"):
        read_mask(tmp_path / "m.png", table)


def test_unknown_mask_ids_are_refused(tmp_path):
    table = ClassTable.read_csv(write_table(tmp_path / "c.csv", [(0, "bg", 0, 0, 0), (1, "crack", 255, 0, 0)]))
    mask = np.zeros((4, 4), np.uint8)
    mask[0, 0] = 7
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    with pytest.raises(DatasetError, match=r"7 \(1 px\)"):
        read_mask(tmp_path / "m.png", table)
