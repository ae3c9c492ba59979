"""The folder layout a user hands over::

    DIR/images/<stem>.jpg|png|bmp|tif    grayscale or colour, any size
    DIR/masks/<stem>.png                 class ids (8-bit) or colours from the class table
    DIR/classes.csv                      id,name,r,g,b
    DIR/train.txt, DIR/val.txt           one stem per line (optional)

Without split lists, a deterministic split by a hash of the stem keeps about 20 % for
validation, so the same file always lands in the same split.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

from edgeseg.data.classes import ClassTable
from edgeseg.data.imageio import IMAGE_SUFFIXES, MASK_SUFFIXES
from edgeseg.errors import DatasetError

SPLITS = ("train", "val")
VAL_FRACTION_WITHOUT_LISTS = 0.2


EXAMPLES_SHOWN = 5


def name_examples(paths: list) -> str:
    """The first few file names (or stems) of a list, and how many more there are."""
    shown = ", ".join(str(getattr(p, "name", p)) for p in paths[:EXAMPLES_SHOWN])
    return shown + (f" and {len(paths) - EXAMPLES_SHOWN} more" if len(paths) > EXAMPLES_SHOWN else "")


@dataclass(frozen=True)
class Sample:
    stem: str
    image: Path
    mask: Path


def _files_by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in suffixes:
            found.setdefault(p.stem, p)
    return found


def _hash_split(stem: str) -> str:
    return "val" if zlib.crc32(stem.encode()) % 1000 < VAL_FRACTION_WITHOUT_LISTS * 1000 else "train"


@dataclass
class DatasetLayout:
    root: Path
    classes: ClassTable
    images: dict[str, Path]
    masks: dict[str, Path]
    split_lists: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def open(cls, root: str | Path) -> DatasetLayout:
        root = Path(root)
        if not root.is_dir():
            raise DatasetError("data set folder not found", root,
                               "give a folder with images/, masks/ and classes.csv (edgeseg data synth makes one)")
        for sub in ("images", "masks"):
            if not (root / sub).is_dir():
                raise DatasetError(f"no {sub}/ folder", root, "a data set needs images/, masks/ and classes.csv")
        classes = ClassTable.read_csv(root / "classes.csv")
        images = _files_by_stem(root / "images", IMAGE_SUFFIXES)
        masks = _files_by_stem(root / "masks", MASK_SUFFIXES)
        if not images:
            raise DatasetError("no images in images/", root,
                               f"add images ({', '.join(IMAGE_SUFFIXES)}) with masks of the same stem")
        split_lists = {}
        for split in SPLITS:
            path = root / f"{split}.txt"
            if path.is_file():
                split_lists[split] = [s.strip() for s in path.read_text().splitlines() if s.strip()]
        return cls(root, classes, images, masks, split_lists)

    @property
    def paired_stems(self) -> list[str]:
        return sorted(self.images.keys() & self.masks.keys())

    @property
    def images_without_mask(self) -> list[Path]:
        return [self.images[s] for s in sorted(self.images.keys() - self.masks.keys())]

    @property
    def masks_without_image(self) -> list[Path]:
        return [self.masks[s] for s in sorted(self.masks.keys() - self.images.keys())]

    def split_stems(self, split: str) -> list[str]:
        """Stems of a split that have both an image and a mask."""
        paired = set(self.paired_stems)
        if self.split_lists:
            return [s for s in self.split_lists.get(split, []) if s in paired]
        return [s for s in self.paired_stems if _hash_split(s) == split]

    def missing_from_split_lists(self) -> dict[str, list[str]]:
        """Stems named in a split list that have no image or no mask."""
        paired = set(self.paired_stems)
        return {split: [s for s in stems if s not in paired] for split, stems in self.split_lists.items()}

    def unpaired(self) -> list[tuple[str, list]]:
        """What ``data check`` calls an error in the files themselves: (what, examples) for images
        without a mask, masks without an image and split-list stems with no image or mask."""
        found = [("image(s) without a mask in masks/", self.images_without_mask),
                 ("mask(s) without an image in images/", self.masks_without_image)]
        found += [(f"stem(s) named in {split}.txt with no image or mask", missing)
                  for split, missing in self.missing_from_split_lists().items()]
        return [(what, examples) for what, examples in found if examples]

    def require_paired(self) -> None:
        """Refuse a data set with unpaired files, which training would otherwise leave out silently."""
        problems = self.unpaired()
        if problems:
            what = "; ".join(f"{len(examples)} {text} ({name_examples(examples)})" for text, examples in problems)
            raise DatasetError(what, self.root, "add the missing files or remove the others (edgeseg data check "
                                                "lists them all)")

    def samples(self, split: str) -> list[Sample]:
        stems = self.split_stems(split)
        if not stems:
            raise DatasetError(f"the {split} split is empty", self.root,
                               f"list stems in {split}.txt, or remove the split lists to split automatically")
        return [Sample(s, self.images[s], self.masks[s]) for s in stems]
