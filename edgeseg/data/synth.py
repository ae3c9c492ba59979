"""``edgeseg data synth``: a synthetic inspection data set, the built-in default.

Textured surfaces (machined metal, ceramic tile, woven fabric) carrying defects shaped like
real ones: small round pits, thin branching cracks, broken edges and uneven patches. Every
image is drawn from its own generator seeded by (seed, index), so a data set is the same on
every machine and any one image can be regenerated alone.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from edgeseg.data.classes import ClassInfo, ClassTable
from edgeseg.errors import ConfigError
from edgeseg.progress import progress

SYNTH_CLASSES = ClassTable((
    ClassInfo(0, "background", (0, 0, 0)),
    ClassInfo(1, "pit", (230, 25, 75)),
    ClassInfo(2, "crack", (255, 225, 25)),
    ClassInfo(3, "broken_edge", (60, 180, 75)),
    ClassInfo(4, "uneven", (0, 130, 200)),
))
SURFACES = ("metal", "ceramic", "fabric")
_TINTS_BGR = {"metal": (1.0, 0.97, 0.92), "ceramic": (0.82, 0.92, 1.0), "fabric": None}


def _smooth_noise(rng: np.random.Generator, h: int, w: int, sigma: float) -> np.ndarray:
    noise = rng.standard_normal((h, w)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), sigma)
    return noise / (noise.std() + 1e-6)


def _surface(kind: str, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A defect-free surface, float32 in about 0..1."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 0.08 * (x / w - 0.5) * rng.uniform(-1, 1) + 0.08 * (y / h - 0.5) * rng.uniform(-1, 1)
    if kind == "metal":
        streaks = cv2.blur(rng.standard_normal((h, w)).astype(np.float32), (41, 1))
        cx, cy = rng.uniform(-2, 3) * w, rng.uniform(-2, 3) * h
        rings = np.sin(np.hypot(x - cx, y - cy) * rng.uniform(0.15, 0.4))
        base = 0.55 + 0.06 * streaks / (streaks.std() + 1e-6) + 0.03 * rings
    elif kind == "ceramic":
        speckle = (rng.random((h, w)) < 0.004).astype(np.float32)
        speckle = cv2.GaussianBlur(speckle, (0, 0), 0.8) * 3
        base = 0.72 + 0.04 * _smooth_noise(rng, h, w, 12) - 0.15 * speckle
    else:
        period = rng.uniform(5, 9)
        warp = np.sin(2 * math.pi * x / period)
        weft = np.sin(2 * math.pi * y / period)
        over = np.sign(np.sin(math.pi * x / period) * np.sin(math.pi * y / period))
        base = 0.5 + 0.12 * np.where(over > 0, warp, weft) + 0.03 * _smooth_noise(rng, h, w, 1.5)
    return base + light + 0.015 * rng.standard_normal((h, w)).astype(np.float32)


def _pits(img, mask, rng, h, w):
    for _ in range(rng.integers(1, 5)):
        r = rng.uniform(2.0, 6.0)
        cx, cy = rng.uniform(r + 2, w - r - 2), rng.uniform(r + 2, h - r - 2)
        blob = np.zeros((h, w), np.uint8)
        cv2.circle(blob, (round(cx * 4), round(cy * 4)), round(r * 4), 1, -1, cv2.LINE_AA, shift=2)
        soft = cv2.GaussianBlur(blob.astype(np.float32), (0, 0), 0.7)
        img -= rng.uniform(0.25, 0.45) * soft
        rim = cv2.circle(np.zeros((h, w), np.float32), (round(cx - r / 3), round(cy - r / 3)),
                         max(1, round(r / 3)), 1.0, -1)
        img += 0.12 * cv2.GaussianBlur(rim, (0, 0), 0.8)
        mask[blob > 0] = 1


def _crack_path(rng, start, angle, length, step=3.0):
    points = [start]
    for _ in range(int(length / step)):
        angle += rng.normal(0, 0.35)
        x, y = points[-1]
        points.append((x + step * math.cos(angle), y + step * math.sin(angle)))
    return np.array(points, np.float32), angle


def _cracks(img, mask, rng, h, w):
    line = np.zeros((h, w), np.uint8)
    start = (rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h)
    main, _ = _crack_path(rng, start, rng.uniform(0, 2 * math.pi), rng.uniform(0.3, 0.8) * max(h, w))
    paths = [main]
    for _ in range(rng.integers(1, 4)):  # branches leave the main crack at a sharp angle
        at = main[rng.integers(len(main) // 4, len(main))]
        branch, _ = _crack_path(rng, tuple(at), rng.uniform(0, 2 * math.pi), rng.uniform(0.1, 0.3) * max(h, w))
        paths.append(branch)
    for p in paths:
        cv2.polylines(line, [np.round(p).astype(np.int32)], False, 1, thickness=int(rng.integers(1, 3)))
    img -= rng.uniform(0.3, 0.5) * cv2.GaussianBlur(line.astype(np.float32), (0, 0), 0.6)
    mask[line > 0] = 2


def _broken_edge(img, mask, rng, h, w):
    side = rng.integers(4)
    n = 14
    depth = rng.uniform(0.08, 0.22) * min(h, w)
    along = np.sort(rng.uniform(0.1, 0.9, 2))
    t = np.linspace(along[0], along[1], n)
    d = depth * np.sin(np.linspace(0, math.pi, n)) * rng.uniform(0.6, 1.0, n)
    if side == 0:
        pts = np.stack([t * w, d], 1)
    elif side == 1:
        pts = np.stack([t * w, h - 1 - d], 1)
    elif side == 2:
        pts = np.stack([d, t * h], 1)
    else:
        pts = np.stack([w - 1 - d, t * h], 1)
    chip = np.zeros((h, w), np.uint8)
    cv2.fillPoly(chip, [np.round(pts).astype(np.int32)], 1)
    inside = chip > 0
    img[inside] = rng.uniform(0.05, 0.15) + 0.03 * rng.standard_normal(int(inside.sum()))  # conveyor shows through
    edge = cv2.morphologyEx(chip, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    img[edge & ~inside] += 0.15  # bright fracture face
    mask[inside] = 3


def _uneven(img, mask, rng, h, w):
    field = _smooth_noise(rng, h, w, rng.uniform(8, 16))
    cx, cy = rng.uniform(0.25, 0.75) * w, rng.uniform(0.25, 0.75) * h
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    radius = rng.uniform(0.12, 0.25) * min(h, w)
    region = (np.hypot((x - cx) / radius, (y - cy) / (radius * rng.uniform(0.6, 1.4))) + 0.35 * field) < 1.0
    if region.sum() < 50:
        return
    shade = cv2.GaussianBlur(region.astype(np.float32), (0, 0), 3)
    img += rng.choice([-1, 1]) * rng.uniform(0.10, 0.18) * shade
    mask[region & (mask == 0)] = 4


_DEFECTS = {1: _pits, 2: _cracks, 3: _broken_edge, 4: _uneven}


def synth_sample(seed: int, index: int, size: int = 256, color: bool = False,
                 defect_free: float = 0.3) -> tuple[np.ndarray, np.ndarray, str]:
    """One (image, mask, surface) drawn from its own generator: uint8 HxW (or HxWx3 BGR), uint8 HxW ids."""
    rng = np.random.default_rng([seed, index])
    h = int(size * rng.uniform(0.85, 1.25))
    w = int(size * rng.uniform(0.85, 1.25))
    kind = SURFACES[rng.integers(len(SURFACES))]
    img = _surface(kind, rng, h, w)
    mask = np.zeros((h, w), np.uint8)
    if rng.random() >= defect_free:
        kinds = rng.choice(list(_DEFECTS), size=rng.integers(1, 3), replace=False)
        for cid in sorted(kinds, key=lambda c: c == 3):  # a broken edge lies on top of everything
            _DEFECTS[int(cid)](img, mask, rng, h, w)
    gray = np.clip(img * 255, 0, 255).astype(np.uint8)
    if not color:
        return gray, mask, kind
    tint = _TINTS_BGR[kind] or tuple(rng.uniform(0.5, 1.0, 3))
    bgr = np.clip(img[..., None] * np.array(tint, np.float32) * 255, 0, 255).astype(np.uint8)
    return bgr, mask, kind


def write_synthetic_dataset(out: str | Path, count: int = 200, size: int = 256, color: bool = False,
                            seed: int = 0, val_fraction: float = 0.2, show_progress: bool = True) -> Path:
    if count < 2:
        raise ConfigError(f"a data set needs at least 2 images (1 train, 1 val), not {count}")
    if size < 32:
        raise ConfigError(f"image size {size} is too small; use 64 or more")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    SYNTH_CLASSES.write_csv(out / "classes.csv")
    stems = []
    for i in progress(range(count), desc="synthesizing", unit="img", disable=not show_progress, leave=False):
        image, mask, kind = synth_sample(seed, i, size, color)
        stem = f"{kind}_{i:05d}"
        cv2.imwrite(str(out / "images" / f"{stem}.png"), image)
        cv2.imwrite(str(out / "masks" / f"{stem}.png"), mask)
        stems.append(stem)
    n_val = max(1, round(count * val_fraction))
    (out / "train.txt").write_text("\n".join(stems[:-n_val]) + "\n")
    (out / "val.txt").write_text("\n".join(stems[-n_val:]) + "\n")
    (out / "README.md").write_text(
        f"# Synthetic inspection data set\n\nMade by `edgeseg data synth --count {count} --size {size}"
        f"{' --color' if color else ''} --seed {seed}`: {count} {'colour' if color else 'grayscale'} images of "
        "machined metal, ceramic tile and woven fabric with pits, cracks, broken edges and uneven patches.\n")
    return out
