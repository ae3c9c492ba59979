import numpy as np

from edgeseg.data import DatasetLayout
from edgeseg.data.synth import SYNTH_CLASSES, synth_sample, write_synthetic_dataset


def test_same_seed_same_image_other_seed_other_image():
    a_img, a_mask, _ = synth_sample(7, 3, 128)
    b_img, b_mask, _ = synth_sample(7, 3, 128)
    c_img, _, _ = synth_sample(8, 3, 128)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_mask, b_mask)
    assert a_img.shape != c_img.shape or not np.array_equal(a_img, c_img)


def test_all_defect_classes_and_surfaces_appear():
    seen_classes, seen_surfaces = set(), set()
    for i in range(40):
        _, mask, kind = synth_sample(0, i, 96)
        seen_classes |= set(np.unique(mask).tolist())
        seen_surfaces.add(kind)
    assert seen_classes == set(range(SYNTH_CLASSES.num_classes))
    assert seen_surfaces == {"metal", "ceramic", "fabric"}


def test_colour_option_gives_bgr_images():
    image, mask, _ = synth_sample(0, 1, 96, color=True)
    assert image.ndim == 3 and image.shape[2] == 3 and image.shape[:2] == mask.shape


def test_written_set_is_a_readable_layout(tmp_path):
    out = write_synthetic_dataset(tmp_path / "d", count=10, size=64, show_progress=False)
    layout = DatasetLayout.open(out)
    assert len(layout.split_stems("train")) == 8 and len(layout.split_stems("val")) == 2
    assert layout.classes.names == SYNTH_CLASSES.names
