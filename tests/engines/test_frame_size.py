"""Frame-size scoring: a model-size mask scaled back to its image keeps small defects in place."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgeseg.data.frames import resize_pair
from edgeseg.engines.accuracy import frame_size_confusion
from edgeseg.metrics import iou_report


def _blobs(height: int, width: int, radius: int) -> np.ndarray:
    truth = np.zeros((height, width), np.uint8)
    for i, (x, y) in enumerate([(30, 40), (100, 150), (170, 60), (60, 230), (150, 250)]):
        if x < width and y < height:
            cv2.circle(truth, (x, y), radius, 1 + i % 2, -1)
    return truth


@pytest.mark.parametrize("height, width", [(288, 217), (300, 250), (256, 230)])
def test_a_perfect_model_size_mask_scores_near_one_at_frame_size(height, width):
    # Photos a little off the model's 256 px: scaling corner to corner (INTER_NEAREST) moves
    # these 11 px blobs by a pixel and scores them 0.66-0.87.
    truth = _blobs(height, width, radius=5)
    _, model_size = resize_pair(np.zeros_like(truth), truth, 256)
    report = iou_report(frame_size_confusion(model_size[None], [truth], 3), ["bg", "a", "b"])
    assert min(report["per_class_iou"]["a"], report["per_class_iou"]["b"]) >= 0.94
