import cv2
import numpy as np
import pytest

from edgeseg.errors import ConfigError
from edgeseg.runtime.regions import find_regions
from edgeseg.runtime.rules import InspectionRules

NAMES = ["background", "blowhole", "crack"]


def _known_mask():
    mask = np.zeros((40, 60), np.uint8)
    mask[2:5, 3:6] = 1  # a 3x3 blowhole: area 9, centroid (4, 3)
    mask[20:30, 40:42] = 1  # a 2x10 blowhole: area 20
    mask[10, 10:30] = 2  # a 20 px crack, one pixel thick
    mask[35, 55] = 2  # a one-pixel speck
    return mask


def test_regions_of_a_known_mask():
    confidence = np.full((40, 60), 0.9, np.float32)
    confidence[20:30, 40:42] = 0.5
    regions = sorted(find_regions(_known_mask(), NAMES, confidence), key=lambda r: (r.class_id, r.area))
    assert [(r.class_name, r.area) for r in regions] == [("blowhole", 9), ("blowhole", 20), ("crack", 1), ("crack", 20)]
    small = regions[0]
    assert small.bbox == (3, 2, 3, 3) and small.centroid == pytest.approx((4.0, 3.0))
    assert sorted(map(tuple, small.polygon)) == [(3, 2), (3, 4), (5, 2), (5, 4)]
    assert regions[1].confidence == pytest.approx(0.5) and small.confidence == pytest.approx(0.9)
    assert all(r.bbox[0] <= x < r.bbox[0] + r.bbox[2] and r.bbox[1] <= y < r.bbox[1] + r.bbox[3]
               for r in regions for x, y in r.polygon)


def test_specks_below_the_minimum_area_are_ignored_and_background_is_never_a_region():
    regions = find_regions(_known_mask(), NAMES, min_area=2)
    assert sorted(r.area for r in regions) == [9, 20, 20]
    assert find_regions(np.zeros((8, 8), np.uint8), NAMES) == []
    speck = np.zeros((8, 8), np.uint8)
    speck[3, 7] = 2  # the only defect pixel, at the edge
    [region] = find_regions(speck, NAMES)
    assert (region.class_name, region.area, region.bbox, region.centroid) == ("crack", 1, (7, 3, 1, 1), (7.0, 3.0))


def test_a_ring_with_an_island_in_its_hole_is_two_regions_measured_without_the_hole():
    mask = np.zeros((30, 30), np.uint8)
    mask[5:25, 5:25] = 1
    mask[8:22, 8:22] = 0  # the ring's hole: 20x20 - 14x14 = 204 px of ring
    mask[12:18, 12:18] = 1  # an island of the same class in the hole: 36 px
    mask[14:16, 14:16] = 0  # ... with a hole of its own: 32 px
    mask[15, 15] = 2  # and a crack pixel in that hole
    confidence = np.where(mask == 1, 0.8, 0.1).astype(np.float32)
    confidence[12:18, 12:18] = 0.6
    regions = sorted(find_regions(mask, NAMES, confidence), key=lambda r: r.area)
    assert [(r.class_name, r.area) for r in regions] == [("crack", 1), ("blowhole", 32), ("blowhole", 204)]
    crack, island, ring = regions
    assert ring.bbox == (5, 5, 20, 20) and ring.centroid == pytest.approx((14.5, 14.5))
    assert ring.confidence == pytest.approx(0.8) and island.confidence == pytest.approx(0.6)
    assert island.bbox == (12, 12, 6, 6) and crack.bbox == (15, 15, 1, 1)


def test_regions_match_opencv_labelling_on_random_masks():
    """Area, box and centroid of every region equal those of OpenCV's 8-connected labelling of
    each class, on blobby masks full of holes, islands, specks and touching classes."""
    rng = np.random.default_rng(0)
    for trial in range(40):
        noise = cv2.GaussianBlur(rng.random((48, 64)).astype(np.float32), (0, 0), rng.uniform(0.5, 3))
        mask = np.digitize(noise, np.quantile(noise, [0.5, 0.7])).astype(np.uint8)
        mask[rng.random(mask.shape) < 0.05 * (trial % 3)] = 0
        if trial % 2:  # defects only inside a box off the edges: regions are searched in that box
            x, y = rng.integers(1, 30), rng.integers(1, 20)
            keep = np.zeros_like(mask)
            keep[y:y + rng.integers(1, 25), x:x + rng.integers(1, 30)] = 1
            mask *= keep
        found = sorted((r.class_id, r.area, r.bbox, round(r.centroid[0], 6), round(r.centroid[1], 6))
                       for r in find_regions(mask, NAMES))
        expected = []
        for class_id in (1, 2):
            count, _, stats, centroids = cv2.connectedComponentsWithStats((mask == class_id).view(np.uint8),
                                                                          connectivity=8)
            expected += [(class_id, int(stats[i, 4]), tuple(int(v) for v in stats[i, :4]),
                          round(centroids[i, 0], 6), round(centroids[i, 1], 6)) for i in range(1, count)]
        assert found == sorted(expected), trial


def test_a_mask_of_the_wrong_kind_is_refused():
    with pytest.raises(ValueError, match="uint8 mask"):
        find_regions(np.zeros((1, 8, 8), np.uint8), NAMES)


def test_default_rules_fail_any_defect():
    rules = InspectionRules()
    assert rules.judge(find_regions(np.zeros((8, 8), np.uint8), NAMES)).passed
    assert not rules.judge(find_regions(_known_mask(), NAMES)).passed


def test_rules_from_yaml_judge_by_count_region_size_and_total_area(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("min_region_area: 2\nrules:\n  - class: blowhole\n    max_region_area: 25\n"
                    "  - class: crack\n    max_regions: 1\n  - class: any\n    max_total_area: 60\n")
    rules = InspectionRules.from_yaml(path, NAMES)
    regions = find_regions(_known_mask(), NAMES, min_area=rules.min_region_area)
    assert rules.judge(regions).passed  # blowholes 9 and 20 px, one crack (the speck is ignored), 49 px in all
    strict = InspectionRules.from_dict({"rules": [{"class": "blowhole", "max_region_area": 15},
                                                  {"class": "any", "max_total_area": 40}]}, NAMES)
    verdict = strict.judge(regions)
    assert not verdict.passed
    assert verdict.reasons == ["blowhole: a region of 20 px > 15 px", "any: 49 px in all > 40 px"]
    assert verdict.to_dict()["verdict"] == "fail"


def test_confidence_threshold_turns_unsure_pixels_into_background():
    rules = InspectionRules.from_dict({"confidence_threshold": 0.6}, NAMES)
    confidence = np.full((40, 60), 0.9, np.float32)
    confidence[20:30, 40:42] = 0.5
    out = np.empty((40, 60), np.uint8)
    kept = rules.apply_threshold(_known_mask(), confidence, out)
    assert kept is out and (kept[20:30, 40:42] == 0).all() and kept[2, 3] == 1


@pytest.mark.parametrize("text, message", [
    ("rules:\n  - class: rust\n    max_regions: 0\n", "unknown class 'rust'"),
    ("rules:\n  - class: crack\n", "needs one of"),
    ("rules:\n  - class: crack\n    max_regions: -1\n", "whole numbers"),
    ("threshold: 0.5\n", "unknown settings threshold"),
    ("rules: [\n", "not valid YAML"),
    # wrong types: the key path, what was expected and what was found
    ("confidence_threshold: [0.6]\n", r"confidence_threshold: expected a number, found \[0.6\]"),
    ("confidence_threshold: high\n", "confidence_threshold: expected a number, found 'high'"),
    ("min_region_area: big\n", "min_region_area: expected a whole number, found 'big'"),
    ("rules:\n  - class: crack\n    max_regions: two\n", "rules.0.max_regions: expected a whole number, found 'two'"),
    ("- class: crack\n", "a rules file is a mapping of setting: value, not list"),
])
def test_bad_rules_files_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as refused:
        InspectionRules.from_yaml(path, NAMES)
    assert str(refused.value).startswith(f"{path}: ") and "\n" not in str(refused.value)


def test_a_binary_rules_file_is_refused_by_name(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    with pytest.raises(ConfigError, match=f"{path}: not a text file"):
        InspectionRules.from_yaml(path, NAMES)
