"""OpenVINO Model API's SegmentationModel on the IR of ``export-serving --to model-api``: the hard
prediction of every image in a folder, written as class-id PNGs of the same names. Run by
tests/export/test_model_api.py in the venv .ci/run makes for the peers (Model API needs OpenCV 4):

    python model_api_masks.py MODEL.xml IMAGES OUT CHANNELS INFERENCE_PRECISION

at the inference precision the bundle was proven at (its manifest's ``engine.inference_precision``):
left to OpenVINO, a CPU with AVX-512 BF16 or AMX runs an fp32 IR in bf16.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
from model_api.adapters import OpenvinoAdapter, create_core
from model_api.models import Model


def main(xml: str, images: str, out: str, channels: int, precision: str) -> None:
    adapter = OpenvinoAdapter(create_core(), xml, device="CPU", plugin_config={"INFERENCE_PRECISION_HINT": precision})
    model = Model.create_model(adapter)  # the model type comes from the IR's model_info
    Path(out).mkdir(parents=True, exist_ok=True)
    for path in sorted(Path(images).iterdir()):
        if channels == 1:
            frame = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)[..., None]
        else:
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        prediction = model(frame)
        mask = getattr(prediction, "resultImage", prediction)
        cv2.imwrite(str(Path(out) / f"{path.stem}.png"), np.asarray(mask, np.uint8))
    print(type(model).__name__, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
