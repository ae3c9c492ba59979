"""The class table: id, name and display colour of every class (``classes.csv``)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeseg.errors import DatasetError

#: Mask value for unlabelled pixels: they count toward no loss and no metric.
IGNORE_ID = 255


@dataclass(frozen=True)
class ClassInfo:
    id: int
    name: str
    color: tuple[int, int, int]  # r, g, b

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "color": list(self.color)}


@dataclass(frozen=True)
class ClassTable:
    """Classes with ids 0..N-1; an optional row with id 255 names the colour of unlabelled pixels
    in colour masks."""

    classes: tuple[ClassInfo, ...]
    ignore_color: tuple[int, int, int] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def to_list(self) -> list[dict]:
        return [c.to_dict() for c in self.classes]

    @classmethod
    def from_list(cls, rows: list[dict]) -> ClassTable:
        return cls(tuple(ClassInfo(int(r["id"]), str(r["name"]), tuple(r["color"])) for r in rows))

    def palette_bgr(self) -> np.ndarray:
        """(256, 3) uint8 lookup table from class id to BGR colour, for overlays and colour masks."""
        lut = np.zeros((256, 3), np.uint8)
        for c in self.classes:
            lut[c.id] = c.color[::-1]
        if self.ignore_color is not None:
            lut[IGNORE_ID] = self.ignore_color[::-1]
        return lut

    def write_csv(self, path: Path) -> None:
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "name", "r", "g", "b"])
            for c in self.classes:
                w.writerow([c.id, c.name, *c.color])
            if self.ignore_color is not None:
                w.writerow([IGNORE_ID, "ignore", *self.ignore_color])

    @classmethod
    def read_csv(cls, path: Path) -> ClassTable:
        path = Path(path)
        if not path.is_file():
            raise DatasetError("class table not found", path,
                               "write a classes.csv with the header id,name,r,g,b and one row per class")
        try:
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise DatasetError(f"cannot read the class table ({e})", path) from None
        need = {"id", "name", "r", "g", "b"}
        if not rows or not need.issubset(rows[0].keys()):
            raise DatasetError("class table needs the header id,name,r,g,b and at least one row", path)
        classes, ignore_color = [], None
        for line, row in enumerate(rows, start=2):
            try:
                cid = int(row["id"])
                color = tuple(int(row[k]) for k in "rgb")
            except (TypeError, ValueError):
                raise DatasetError(f"line {line}: id and r,g,b must be whole numbers", path) from None
            if not all(0 <= v <= 255 for v in color):
                raise DatasetError(f"line {line}: colour values must be 0..255", path)
            if cid == IGNORE_ID:
                ignore_color = color
                continue
            classes.append(ClassInfo(cid, row["name"].strip(), color))
        classes.sort(key=lambda c: c.id)
        ids = [c.id for c in classes]
        if ids != list(range(len(ids))):
            raise DatasetError(f"class ids must run 0..N-1 without gaps (found {ids})", path,
                               f"renumber the classes; {IGNORE_ID} is reserved for unlabelled pixels")
        colors = [c.color for c in classes] + ([ignore_color] if ignore_color else [])
        if len(set(colors)) != len(colors):
            raise DatasetError("two rows share one colour, so colour masks would be ambiguous", path)
        return cls(tuple(classes), ignore_color)
