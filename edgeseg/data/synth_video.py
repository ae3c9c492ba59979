"""A conveyor-style inspection video: synthetic parts (the surfaces and defects of ``synth``)
pass under the camera one after another, scrolling right to left, some with defects."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgeseg.data.synth import synth_sample
from edgeseg.errors import ConfigError


def write_inspection_video(path: str | Path, parts: int = 8, frames_per_part: int = 20, width: int = 640,
                           height: int = 512, color: bool = False, fps: float = 10.0, seed: int = 0) -> Path:
    """Each part fills the frame; the next one pushes it out to the left over ``frames_per_part``
    frames. Returns the video's path (MPEG-4, which every OpenCV build writes)."""
    if parts < 1 or frames_per_part < 1:
        raise ConfigError("a video needs at least one part and one frame per part")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    side = max(width, height)
    samples = [cv2.resize(synth_sample(seed, 100_000 + i, side, color, defect_free=0.4)[0], (width, height),
                          interpolation=cv2.INTER_AREA) for i in range(parts + 1)]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise ConfigError("cannot write the video", path)
    strip = np.concatenate(samples, axis=1)  # the parts side by side, as on the belt
    step = width / frames_per_part
    for t in range(parts * frames_per_part):
        x = int(round(t * step))
        frame = strip[:, x:x + width]
        writer.write(frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path
