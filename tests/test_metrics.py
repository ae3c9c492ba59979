import numpy as np
import pytest

from edgeseg.data.classes import IGNORE_ID
from edgeseg.metrics import confusion_matrix, iou_report, mean_iou, per_class_iou, pixel_agreement


def test_iou_from_a_known_confusion():
    target = np.array([0, 0, 1, 1, 2, IGNORE_ID])
    pred = np.array([0, 1, 1, 1, 0, 2])
    conf = confusion_matrix(pred, target, 3)
    assert conf.sum() == 5  # the ignored pixel is left out
    iou = per_class_iou(conf)
    assert iou == pytest.approx([1 / 3, 2 / 3, 0.0])
    assert mean_iou(conf) == pytest.approx((1 / 3 + 2 / 3) / 3)


def test_absent_classes_do_not_count():
    conf = confusion_matrix(np.zeros(4, np.uint8), np.zeros(4, np.uint8), 3)
    assert np.isnan(per_class_iou(conf)[1])
    report = iou_report(conf, ["bg", "a", "b"])
    assert report["miou"] == 1.0 and report["per_class_iou"]["a"] is None


def test_a_stack_of_confusions_gives_each_ones_iou():
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 50, (4, 3, 3))
    stack[2, 1, :] = stack[2, :, 1] = 0  # class 1 absent from one matrix
    ious = per_class_iou(stack)
    assert ious.shape == (4, 3)
    for one, iou in zip(stack, ious, strict=True):
        np.testing.assert_array_equal(iou, per_class_iou(one))
    assert np.isnan(ious[2, 1]) and not np.isnan(ious[[0, 1, 3], 1]).any()


def test_pixel_agreement_and_shape_check():
    a = np.zeros((2, 2), np.uint8)
    b = a.copy()
    b[0, 0] = 1
    assert pixel_agreement(a, b) == 0.75
    with pytest.raises(ValueError):
        pixel_agreement(a, np.zeros((3, 2), np.uint8))
