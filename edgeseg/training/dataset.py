"""Training and validation samples, decoded once and kept in memory.

Training images are cached at most twice the input size per side (crops stay sharp, memory
stays small); validation images are stretched to the input size once, as the runtime does.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np
import torch

from edgeseg.data import DatasetLayout, Sample
from edgeseg.data.frames import MASK_RESIZE
from edgeseg.data.imageio import data_bit_depth, read_image, read_mask, to_uint8
from edgeseg.errors import DatasetError
from edgeseg.progress import progress
from edgeseg.training.augment import AugmentConfig, augment_pair, defect_pixels, resize_pair


def infer_channels(layout: DatasetLayout, stems: list[str], probe: int = 16) -> int:
    """1 if the images are grayscale (or colour with equal channels), else 3."""
    for stem in stems[:probe]:
        image = read_image(layout.images[stem])
        if image.ndim == 3 and not (np.array_equal(image[..., 0], image[..., 1])
                                    and np.array_equal(image[..., 1], image[..., 2])):
            return 3
    return 1


def load_sample(sample: Sample, layout: DatasetLayout, channels: int,
                bit_depth: int | None = 16) -> tuple[np.ndarray, np.ndarray]:
    """An image (16-bit files scaled by ``bit_depth``; None: kept 16-bit) and its class mask."""
    image = read_image(sample.image, channels, bit_depth)
    mask = read_mask(sample.mask, layout.classes)
    if image.shape[:2] != mask.shape[:2]:
        raise DatasetError(f"mask is {mask.shape[1]}x{mask.shape[0]} but its image is "
                           f"{image.shape[1]}x{image.shape[0]}", sample.mask,
                           "masks must match their images pixel for pixel (edgeseg data check lists all)")
    return image, mask


def _shrink(image: np.ndarray, mask: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    h, w = mask.shape
    if max(h, w) <= limit:
        return image, mask
    f = limit / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return (cv2.resize(image, size, interpolation=cv2.INTER_AREA),
            cv2.resize(mask, size, interpolation=MASK_RESIZE))


def load_split(layout: DatasetLayout, split: str, channels: int, size: int | tuple[int, int], train: bool,
               bit_depth: int | None = None) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """The split's images (for training shrunk to at most twice the side ``size``, their aspect
    kept; for validation stretched to ``size``, a side or (height, width)) and masks,
    and the bit depth their 16-bit images were scaled by: ``bit_depth``, or (None) the depth that
    holds this split's largest value (edgeseg/data/imageio.py), found once every image is read."""
    images, masks = [], []
    samples = layout.samples(split)
    for sample in progress(samples, desc=f"loading {split}", unit="img", leave=False):
        image, mask = load_sample(sample, layout, channels, bit_depth=None)
        height, width = (size, size) if isinstance(size, int) else size
        image, mask = (_shrink(image, mask, 2 * max(height, width)) if train
                       else resize_pair(image, mask, width, height))
        images.append(image)
        masks.append(mask)
    depth = bit_depth or data_bit_depth(images)
    return [to_uint8(image, depth) for image in images], masks, depth


def input_shape(side: int, photo_shapes: list[tuple[int, ...]], multiple: int,
                keep_aspect: bool = True) -> tuple[int, int]:
    """The model's (height, width): ``side`` square, or, where ``keep_aspect`` and every photo has
    one aspect (within 3 % of their median) that is not square, ``side`` on the shorter side and
    the longer one in that aspect, rounded to ``multiple`` (the architecture's stride)."""
    if not keep_aspect or not photo_shapes:
        return side, side
    aspects = np.array([w / h for h, w, *_ in photo_shapes])
    median = float(np.median(aspects))
    if np.abs(aspects / median - 1).max() > 0.03 or abs(median - 1) <= 0.03:
        return side, side
    longer = max(side, multiple * round(side * max(median, 1 / median) / multiple))
    return (side, longer) if median > 1 else (longer, side)


def class_statistics(masks: list[np.ndarray], num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel count per class and, per image, which classes it contains (n_images, n_classes)."""
    pixels = np.zeros(num_classes, np.int64)
    present = np.zeros((len(masks), num_classes), bool)
    for i, mask in enumerate(masks):
        counts = np.bincount(mask.ravel(), minlength=256)[:num_classes]
        pixels += counts
        present[i] = counts > 0
    return pixels, present


def class_weights(pixels: np.ndarray, mode: str, max_weight: float) -> np.ndarray | None:
    """Loss weights from pixel frequency, 1.0 for the most frequent class, capped at max_weight."""
    if mode == "none":
        return None
    freq = np.maximum(pixels / max(pixels.sum(), 1), 1e-8)
    ratio = freq.max() / freq
    weights = np.sqrt(ratio) if mode == "sqrt" else ratio
    weights[pixels == 0] = 1.0
    return np.minimum(weights, max_weight).astype(np.float32)


def log_class_prior(pixels: np.ndarray, floor: float = 1e-4) -> np.ndarray:
    """Centred log pixel frequency per class, the bias that makes an untrained model predict the
    class balance of the data."""
    log_freq = np.log(np.maximum(pixels / max(pixels.sum(), 1), floor))
    return (log_freq - log_freq.mean()).astype(np.float32)


def repeat_factors(present: np.ndarray, threshold: float, background_only: float = 1.0) -> np.ndarray:
    """Repeat-factor sampling (Gupta et al., LVIS 2019): an image is repeated
    max(1, sqrt(threshold / f)) times per epoch for the rarest class it holds, f being the
    fraction of images that hold that class. Images of class 0 alone (defect-free parts) are
    drawn with probability ``background_only`` instead."""
    if threshold <= 0:
        factors = np.ones(len(present))
    else:
        image_freq = present.mean(0)
        with np.errstate(divide="ignore"):
            per_class = np.where(image_freq > 0, np.maximum(1.0, np.sqrt(threshold / image_freq)), 1.0)
        factors = np.array([per_class[row].max() if row.any() else 1.0 for row in present])
    defect_free = ~present[:, 1:].any(1)
    factors[defect_free] = background_only
    return factors


def area_factors(images: list[np.ndarray]) -> np.ndarray:
    """Each image's pixel count over the split's mean: a station scores masks at the photo's own
    size, where a large photo counts for more pixels than a small one."""
    areas = np.array([image.shape[0] * image.shape[1] for image in images], np.float64)
    return areas / areas.mean()


def epoch_indices(factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One epoch's sample order: each image floor(r) times plus once more with probability frac(r)."""
    whole = np.floor(factors).astype(int)
    extra = rng.random(len(factors)) < (factors - whole)
    indices = np.repeat(np.arange(len(factors)), whole + extra)
    rng.shuffle(indices)
    return indices


def channel_stats(images: list[np.ndarray], channels: int) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the training images, in 0..1 units."""
    total = np.zeros(channels)
    total_sq = np.zeros(channels)
    count = 0
    for image in images:
        x = image.reshape(-1, channels).astype(np.float64) / 255.0
        total += x.sum(0)
        total_sq += (x * x).sum(0)
        count += x.shape[0]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 1e-6))
    return mean.tolist(), std.tolist()


def to_tensor_batch(images: list[np.ndarray], masks: list[np.ndarray], mean: list[float], std: list[float]):
    """uint8 HW[C] images -> normalised float NCHW; masks -> int64 NHW."""
    x = np.stack(images)
    if x.ndim == 3:
        x = x[..., None]
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    # (x / 255 - m) / s in place: one float copy of the batch, not three
    x = torch.from_numpy(x).permute(0, 3, 1, 2).float().sub_(255.0 * m).div_(255.0 * s).contiguous()
    y = torch.from_numpy(np.stack(masks)).long()
    return x, y


class TrainBatches:
    """Augmented training batches for one epoch, drawn with repeat-factor sampling.

    With ``crop_size`` below the input size, samples are crops of that side at the model's own
    scale (a crop_size/input_size share of the stretched image): the fully convolutional model
    sees defects exactly as large as at inference, at a fraction of the cost per sample.
    """

    def __init__(self, images, masks, size: tuple[int, int], batch_size: int, factors: np.ndarray,
                 augment: AugmentConfig, mean, std, crop_size: int | None = None):
        """``size``: the model's (height, width); ``crop_size``: the side of square crops."""
        self.images, self.masks = images, masks
        self.size = (crop_size, crop_size) if crop_size else size
        self.view = (self.size[1] / size[1], self.size[0] / size[0])
        self.batch_size = batch_size
        self.factors, self.augment = factors, augment
        self.mean, self.std = mean, std
        self.focus = [defect_pixels(m, seed=i) for i, m in enumerate(masks)]

    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(self.factors.sum() / self.batch_size))

    def epoch(self, number: int, seed: int, rank: int = 0, world: int = 1,
              size: tuple[int, int] | None = None) -> Iterator:
        """Epoch ``number``'s batches, in order (``plan`` says which samples each takes); ``size``:
        see ``batch``."""
        shares = self.plan(number, seed, rank, world)
        return (self.batch(share, self.batch_stream(number, seed, rank, k), size) for k, share in enumerate(shares))

    def plan(self, number: int, seed: int, rank: int = 0, world: int = 1) -> list[np.ndarray]:
        """Each batch's sample indices for this rank. The order comes from (seed, epoch) alone, so
        every rank of a distributed run draws the same one and takes its share of each global
        batch of ``batch_size`` (a last batch smaller than the ranks is left out). ``self.seen``:
        the sample indices this rank is given."""
        order = epoch_indices(self.factors, np.random.default_rng([seed, number]))
        shares = [np.array_split(order[start:start + self.batch_size], world)[rank]
                  for start in range(0, len(order), self.batch_size)
                  if len(order[start:start + self.batch_size]) >= world]
        self.seen: list[int] = [int(i) for share in shares for i in share]
        return shares

    @staticmethod
    def batch_stream(number: int, seed: int, rank: int, k: int) -> np.random.Generator:
        """Batch k's own augmentation stream: any process makes any batch alike, in any order."""
        return np.random.default_rng([seed, number, rank + 1, k])

    def batch(self, indices: np.ndarray, rng: np.random.Generator, size: tuple[int, int] | None = None):
        """The augmented, normalised batch of these samples, at (height, width) ``size`` if given
        (progressive resizing: the same views of the photos in fewer pixels, warped straight to
        that size, not made at full size and scaled), else at ``self.size``."""
        pairs = [augment_pair(self.images[i], self.masks[i], size or self.size, self.augment, rng, self.focus[i],
                              self.view) for i in indices]
        return to_tensor_batch([p[0] for p in pairs], [p[1] for p in pairs], self.mean, self.std)


__all__ = ["TrainBatches", "load_split", "infer_channels", "class_statistics",
           "class_weights", "log_class_prior", "repeat_factors", "area_factors", "channel_stats", "to_tensor_batch"]
