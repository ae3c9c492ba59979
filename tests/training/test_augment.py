from statistics import NormalDist

import cv2
import numpy as np
import pytest

from edgeseg.training.augment import AugmentConfig, _with_noise, augment_pair, defect_pixels, resize_pair

NO_PHOTOMETRIC = dict(brightness=0.0, contrast=0.0, gamma=0.0, saturation=0.0, hue_degrees=0.0, noise_std=0.0)
WHOLE_UNTURNED = dict(scale=(1.0, 1.0), aspect=(1.0, 1.0), rotate_degrees=0.0, rotate_90=False, hflip=0.0, vflip=0.0)


def blocky_pair(rng):
    """A mask of large blocks and an image whose grey level encodes the class."""
    mask = np.kron(rng.integers(0, 4, (6, 8)), np.ones((16, 16), np.int64)).astype(np.uint8)
    return (mask * 60).astype(np.uint8), mask


def interior(mask):
    """Pixels whose 5x5 neighbourhood holds one class, away from the reflected frame border."""
    kernel = np.ones((5, 5), np.uint8)
    inside = cv2.dilate(mask, kernel) == cv2.erode(mask, kernel)
    inside[:3], inside[-3:], inside[:, :3], inside[:, -3:] = False, False, False, False
    return inside


def test_mask_labels_are_never_interpolated_and_stay_aligned():
    rng = np.random.default_rng(0)
    image, mask = blocky_pair(rng)
    cfg = AugmentConfig(**NO_PHOTOMETRIC)
    for _ in range(20):
        out_img, out_mask = augment_pair(image, mask, 64, cfg, rng)
        assert out_img.shape == out_mask.shape == (64, 64)
        assert set(np.unique(out_mask)) <= set(np.unique(mask))
        inside = interior(out_mask)
        assert inside.mean() > 0.3
        assert np.array_equal(out_img[inside], out_mask[inside] * 60)


@pytest.mark.parametrize("size", [32, (32, 48), (48, 32)])
def test_identity_geometry_equals_the_runtime_resize(size):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (50, 70), np.uint8)
    mask = rng.integers(0, 3, (50, 70), np.uint8)
    cfg = AugmentConfig(scale=(1.0, 1.0), aspect=(1.0, 1.0), rotate_degrees=0.0, rotate_90=False,
                        hflip=0.0, vflip=0.0, **NO_PHOTOMETRIC)
    out_img, out_mask = augment_pair(image, mask, size, cfg, rng)
    height, width = (size, size) if isinstance(size, int) else size
    assert out_img.shape == out_mask.shape == (height, width)  # a non-square input is (height, width)
    ref_img, ref_mask = resize_pair(image, mask, width, height)
    assert np.abs(out_img.astype(int) - ref_img).max() <= 1
    assert (out_mask == ref_mask).mean() > 0.97


def test_flips_and_rotations_move_image_and_mask_together():
    image = np.zeros((32, 32), np.uint8)
    mask = np.zeros((32, 32), np.uint8)
    mask[:8, :8] = 1
    image[:8, :8] = 200
    cfg = AugmentConfig(scale=(1.0, 1.0), aspect=(1.0, 1.0), rotate_degrees=0.0, rotate_90=True,
                        hflip=0.5, vflip=0.5, **NO_PHOTOMETRIC)
    rng = np.random.default_rng(2)
    corners = set()
    for _ in range(30):
        out_img, out_mask = augment_pair(image, mask, 32, cfg, rng)
        assert np.array_equal(out_img == 200, out_mask == 1)
        ys, xs = np.nonzero(out_mask)
        corners.add((ys.mean() > 16, xs.mean() > 16))
    assert len(corners) == 4  # the defect visited every corner


def test_photometric_jitter_changes_the_image_only():
    rng = np.random.default_rng(3)
    image, mask = blocky_pair(rng)
    plain_img, plain_mask = augment_pair(image, mask, 64, AugmentConfig(**WHOLE_UNTURNED, **NO_PHOTOMETRIC), rng)
    jitter_img, jitter_mask = augment_pair(image, mask, 64, AugmentConfig(**WHOLE_UNTURNED, brightness=0.3), rng)
    assert np.array_equal(plain_mask, jitter_mask)
    assert not np.array_equal(plain_img, jitter_img)


def test_sensor_noise_is_zero_mean_within_its_scale_and_saturates_at_the_ends():
    cfg = AugmentConfig(**WHOLE_UNTURNED, **{**NO_PHOTOMETRIC, "noise_std": 8.0})
    mask = np.zeros((64, 64), np.uint8)
    rng = np.random.default_rng(5)
    grey = [augment_pair(np.full((64, 64), 128, np.uint8), mask, 64, cfg, rng)[0].astype(float) for _ in range(40)]
    stds = [g.std() for g in grey]
    assert abs(np.mean(grey) - 128) < 0.1  # no bias: rounded to the nearest level, not truncated
    assert min(stds) < 2 and 4 < max(stds) < 8.5  # each image's own scale, drawn from 0 to 8
    black = augment_pair(np.zeros((64, 64), np.uint8), mask, 64, cfg, np.random.default_rng(5))[0]
    white = augment_pair(np.full((64, 64), 255, np.uint8), mask, 64, cfg, np.random.default_rng(5))[0]
    assert black.dtype == np.uint8 and black.max() > 0 and white.min() < 255  # noise on both ends
    assert black.max() < 48 and white.min() > 207  # clipped, not wrapped around (6 times the largest scale)
    again = augment_pair(np.full((64, 64), 128, np.uint8), mask, 64, cfg, np.random.default_rng(5))[0]
    assert np.array_equal(again, grey[0].astype(np.uint8))  # one seed, one image


def test_sensor_noise_is_gaussian_at_the_scale_asked_and_new_in_every_image():
    rng = np.random.default_rng(11)
    first, second = (_with_noise(np.full((256, 256), 128, np.uint8), 6.0, rng).astype(float) - 128 for _ in range(2))
    for noise in (first, second):
        assert abs(noise.std() - 6.0) < 0.15 and abs(noise.mean()) < 0.05
        within_one_sigma = 2 * NormalDist().cdf(6.5 / 6) - 1  # rounded to the nearest grey level
        assert abs(np.mean(np.abs(noise) <= 6) - within_one_sigma) < 0.02
        assert 2 * 6 < np.abs(noise).max() < 3.5 * 6  # tails, cut short of the far ones
    assert abs(np.corrcoef(first.ravel(), second.ravel())[0, 1]) < 0.02  # not one pattern again
    assert abs(np.corrcoef(first[:, 1:].ravel(), first[:, :-1].ravel())[0, 1]) < 0.02  # nor pixel to pixel


def test_defect_centred_crops_hold_the_defect():
    mask = np.zeros((200, 200), np.uint8)
    mask[10:14, 180:184] = 2
    image = mask * 100
    cfg = AugmentConfig(scale=(0.1, 0.1), defect_centred=1.0, **NO_PHOTOMETRIC)
    rng = np.random.default_rng(4)
    focus = defect_pixels(mask)
    hits = sum((augment_pair(image, mask, 32, cfg, rng, focus)[1] == 2).any() for _ in range(20))
    misses = sum((augment_pair(image, mask, 32, cfg, rng, None)[1] == 2).any() for _ in range(20))
    assert hits == 20 and misses < 10


def test_patch_crops_keep_the_model_scale():
    # vertical stripes 8 px wide once the 200 px image is stretched to the 100 px model input
    mask = ((np.arange(200) // 16) % 2).astype(np.uint8)[None].repeat(100, 0)
    cfg = AugmentConfig(scale=(1.0, 1.0), aspect=(1.0, 1.0), rotate_degrees=0.0, rotate_90=False,
                        hflip=0.0, vflip=0.0, **NO_PHOTOMETRIC)
    rng = np.random.default_rng(5)
    _, crop = augment_pair(mask * 100, mask, 32, cfg, rng, view=32 / 100)
    runs = np.diff(np.flatnonzero(np.diff(crop[0].astype(int)) != 0))
    assert len(runs) >= 2 and all(abs(r - 8) <= 1 for r in runs)
