"""Tile mode: a large frame cut into overlapping tiles at native resolution, each run through
the model at its input size, and the tile masks stitched back into one frame-size mask.

Layout, per axis: tiles start every ``tile - overlap`` pixels; the last tile is moved back so it
ends exactly at the frame's edge (it then overlaps its neighbour by more). Every pixel is thus
seen by one or more tiles.

Stitching rule: where two tiles overlap, the seam is the middle of their overlap; each tile
gives the pixels on its side of the seam. So every pixel comes from exactly one tile, and from
the tile in which it lies farthest from an edge (at least ``overlap // 2`` pixels in, except at
the frame's own border), where the model saw the most context around it. A region that crosses
a seam is joined again by the region search, which runs on the stitched mask.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeseg.errors import ConfigError


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    if tile > length:
        raise ConfigError(f"a {tile} px tile does not fit in a {length} px frame",
                          fix="use resize mode for frames smaller than the model's input")
    if not 0 <= overlap < tile:
        raise ConfigError(f"the tile overlap must be in [0, {tile}), not {overlap}")
    step = tile - overlap
    starts = list(range(0, length - tile + 1, step))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def _spans(starts: list[int], tile: int, length: int) -> list[tuple[int, int]]:
    """Per tile, the [lo, hi) frame range it gives: split at the middle of each overlap."""
    seams = [(starts[i + 1] + starts[i] + tile) // 2 for i in range(len(starts) - 1)]
    edges = [0, *seams, length]
    return [(edges[i], edges[i + 1]) for i in range(len(starts))]


@dataclass(frozen=True)
class Tile:
    y: int  # where the tile sits in the frame
    x: int
    keep: tuple[slice, slice]  # what it gives, in tile coordinates
    to: tuple[slice, slice]  # where that goes, in frame coordinates


class TileGrid:
    def __init__(self, frame_height: int, frame_width: int, tile_height: int, tile_width: int, overlap: int):
        self.frame_size = (frame_height, frame_width)
        self.tile_size = (tile_height, tile_width)
        self.overlap = overlap
        ys = tile_starts(frame_height, tile_height, overlap)
        xs = tile_starts(frame_width, tile_width, overlap)
        y_spans, x_spans = _spans(ys, tile_height, frame_height), _spans(xs, tile_width, frame_width)
        self.tiles = [Tile(y, x, (slice(y0 - y, y1 - y), slice(x0 - x, x1 - x)), (slice(y0, y1), slice(x0, x1)))
                      for y, (y0, y1) in zip(ys, y_spans, strict=True) for x, (x0, x1) in zip(xs, x_spans, strict=True)]

    def __len__(self) -> int:
        return len(self.tiles)

    def crop(self, tile: Tile) -> tuple[slice, slice]:
        return slice(tile.y, tile.y + self.tile_size[0]), slice(tile.x, tile.x + self.tile_size[1])
