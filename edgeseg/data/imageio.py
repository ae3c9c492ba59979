"""Reading images and masks with OpenCV, refusing truncated or corrupt files.

OpenCV decodes a truncated JPEG without complaint (the missing rows come back grey), so the
file's end marker is checked first.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgeseg.data.classes import IGNORE_ID, ClassTable
from edgeseg.errors import DatasetError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff")

_JPEG_END = b"\xff\xd9"
_PNG_END = b"IEND"


def _check_complete(path: Path, data: bytes) -> None:
    suffix = path.suffix.lower()
    tail = data[-64:].rstrip(b"\x00\r\n ")
    if suffix in (".jpg", ".jpeg") and not tail.endswith(_JPEG_END):
        raise DatasetError("truncated JPEG (no end-of-image marker)", path, "re-export or remove the file")
    if suffix == ".png" and _PNG_END not in data[-32:]:
        raise DatasetError("truncated PNG (no IEND chunk)", path, "re-export or remove the file")


def _decode(path: Path, flags: int) -> np.ndarray:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"cannot read file ({e.strerror})", path) from None
    if not data:
        raise DatasetError("empty file", path, "re-export or remove the file")
    _check_complete(path, data)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None:
        raise DatasetError("not a readable image", path, "re-export or remove the file")
    return image


# The one bit-depth rule, everywhere (data check, training, the gate, verify, the runtime): a
# 16-bit pixel is scaled to 8 bits with full scale 2**depth - 1, where depth is what the camera's
# pixel format says (Mono12: 12) or, for files, the data set's depth that training found and the
# checkpoint and the bundle record: the smallest of these that holds its largest value.
SIXTEEN_BIT_DEPTHS = (10, 12, 14, 16)


def depth_holding(largest: int) -> int:
    """The bit depth of 16-bit data whose largest value is ``largest``."""
    return next((depth for depth in SIXTEEN_BIT_DEPTHS if largest < 1 << depth), 16)


def data_bit_depth(images: list[np.ndarray]) -> int:
    """8 for 8-bit images; else the depth holding the largest value of the 16-bit ones."""
    largest = max((int(image.max()) for image in images if image.dtype == np.uint16 and image.size), default=None)
    return 8 if largest is None else depth_holding(largest)


def scale_to_8bit(image: np.ndarray, bit_depth: int, out: np.ndarray | None = None) -> np.ndarray:
    """A 16-bit image scaled to 8 bits, full scale 2**bit_depth - 1 (16 where the depth says 8:
    16-bit data for a model trained on 8-bit data is taken at its full range); saturates."""
    scale = 255.0 / ((1 << (bit_depth if bit_depth > 8 else 16)) - 1)
    if out is not None and out.shape == image.shape and out.dtype == np.uint8:
        return cv2.convertScaleAbs(image, dst=out, alpha=scale)
    return cv2.convertScaleAbs(image, alpha=scale)


def to_uint8(image: np.ndarray, bit_depth: int | None = 16) -> np.ndarray:
    """Alpha dropped; 16-bit images scaled to 8 bits by the bit-depth rule (``None``: kept 16-bit,
    for a data set whose depth is found once all its images are read)."""
    if image.dtype not in (np.uint8, np.uint16):
        raise DatasetError(f"unsupported pixel type {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.dtype == np.uint16 and bit_depth is not None:
        image = scale_to_8bit(image, bit_depth)
    return image


def read_image(path: Path, channels: int | None = None, bit_depth: int | None = 16) -> np.ndarray:
    """An image: (H, W) for 1 channel, (H, W, 3) BGR for 3 (``None`` keeps what the file has);
    8-bit, with 16-bit files scaled by ``bit_depth`` (``None``: kept 16-bit)."""
    image = _decode(path, cv2.IMREAD_UNCHANGED)
    try:
        image = to_uint8(image, bit_depth)
    except DatasetError as e:
        raise DatasetError(e.what, path) from None
    if channels == 1 and image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif channels == 3 and image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image


def read_mask_raw(path: Path) -> np.ndarray:
    """The mask as stored: (H, W) uint8 ids, or (H, W, 3) BGR colours."""
    mask = _decode(path, cv2.IMREAD_UNCHANGED)
    if mask.ndim == 3 and mask.shape[2] == 4:
        mask = mask[:, :, :3]
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[:, :, 0]
    if mask.dtype != np.uint8:
        raise DatasetError(f"mask must be 8-bit, found {mask.dtype}", path,
                           "save class ids as an 8-bit PNG")
    return mask


def colors_to_ids(mask_bgr: np.ndarray, table: ClassTable) -> tuple[np.ndarray, dict[tuple, int]]:
    """Map a colour mask to class ids. Returns ids (unknown colours become IGNORE_ID) and
    {(r, g, b): pixel count} of the colours that are not in the table."""
    key = (mask_bgr[:, :, 2].astype(np.int32) << 16) | (mask_bgr[:, :, 1].astype(np.int32) << 8) | mask_bgr[:, :, 0]
    uniq, inverse = np.unique(key, return_inverse=True)
    known = {(c.color[0] << 16) | (c.color[1] << 8) | c.color[2]: c.id for c in table.classes}
    if table.ignore_color is not None:
        r, g, b = table.ignore_color
        known[(r << 16) | (g << 8) | b] = IGNORE_ID
    lut = np.array([known.get(int(k), IGNORE_ID) for k in uniq], np.uint8)
    counts = np.bincount(inverse.ravel(), minlength=len(uniq))
    unknown = {((int(k) >> 16) & 255, (int(k) >> 8) & 255, int(k) & 255): int(n)
               for k, n in zip(uniq, counts, strict=True) if int(k) not in known}
    return lut[inverse.reshape(key.shape)], unknown


def unknown_ids(mask_ids: np.ndarray, table: ClassTable) -> dict[int, int]:
    """{id: pixel count} of mask values that are neither a class nor the ignore id."""
    counts = np.bincount(mask_ids.ravel(), minlength=256)
    return {int(i): int(counts[i]) for i in np.flatnonzero(counts)
            if i >= table.num_classes and i != IGNORE_ID}


def read_mask(path: Path, table: ClassTable) -> np.ndarray:
    """Class ids (H, W) uint8; unlabelled pixels are IGNORE_ID. Unknown ids or colours are an error."""
    raw = read_mask_raw(path)
    if raw.ndim == 3:
        ids, unknown = colors_to_ids(raw, table)
        if unknown:
            shown = ", ".join(f"rgb{c} ({n} px)" for c, n in list(unknown.items())[:3])
            raise DatasetError(f"colours not in the class table: {shown}", path,
                               "add them to classes.csv or fix the mask (edgeseg data check lists all)")
        return ids
    bad = unknown_ids(raw, table)
    if bad:
        shown = ", ".join(f"{i} ({n} px)" for i, n in list(bad.items())[:3])
        raise DatasetError(f"class ids not in the class table: {shown}", path,
                           "add them to classes.csv or fix the mask (edgeseg data check lists all)")
    return raw
