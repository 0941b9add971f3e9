"""Run an image-to-image model over overlapping tiles, so a large image never has to fit on the device at
once, with seams blended away.

Tiles are `tile` input pixels square (the last one on each axis may be a little larger), spread evenly, and
overlap their neighbours by at least `overlap` pixels. Each tile's output is weighted by a linear ramp across the overlap
on every side that has a neighbour (never on the image border), and the weighted outputs are averaged: pixels
near a tile's inner edge, which saw zero padding instead of their real neighbours, count least. Tile starts
are multiples of `align`, so window-attention models (SwinIR's 8-pixel windows) partition a tile the way they
partition the whole image. Outputs are accumulated on the CPU: only one tile lives on the device.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

ALIGN = 16


def tile_spans(length: int, tile: int, overlap: int, align: int = ALIGN) -> list[tuple[int, int]]:
    """(start, end) of the tiles along one axis: they cover [0, length) and neighbours overlap by at least
    `overlap` (whenever the axis is longer than `tile`)."""
    if length <= tile:
        return [(0, length)]
    # As few tiles as keep every overlap ≥ `overlap` after aligning starts down, spread evenly.
    count = math.ceil((length - tile) / max(1, tile - overlap - align)) + 1
    spaced = (round(i * (length - tile) / (count - 1)) for i in range(count))
    starts = sorted({s - s % align for s in spaced})
    return [(s, length if i == len(starts) - 1 else s + tile) for i, s in enumerate(starts)]


def _ramp(span: tuple[int, int], length: int, scale: int, overlap: int) -> Any:
    """Per output pixel weight of one tile along one axis."""
    import torch

    start, end = span
    size = (end - start) * scale
    position = torch.arange(size, dtype=torch.float32) + 0.5
    width = max(1.0, float(overlap * scale))
    weight = torch.ones(size)
    if start > 0:
        weight = torch.minimum(weight, position / width)
    if end < length:
        weight = torch.minimum(weight, (size - position) / width)
    return weight


def run_tiled(model: Callable[[Any], Any], image: Any, scale: int, tile: int, overlap: int) -> Any:
    """`model` applied to `image` ((1, C, H, W), on the model's device) tile by tile; returns the
    (1, C, H·scale, W·scale) float32 result on the CPU. With one tile this is exactly `model(image)`."""
    import torch

    _, _, height, width = image.shape
    rows, cols = tile_spans(height, tile, overlap), tile_spans(width, tile, overlap)
    if len(rows) == 1 and len(cols) == 1:
        return model(image).float().cpu()
    out: Any = None
    total = torch.zeros(height * scale, width * scale)
    for row in rows:
        wy = _ramp(row, height, scale, overlap)
        for col in cols:
            part = model(image[:, :, row[0] : row[1], col[0] : col[1]]).float().cpu()[0]
            if out is None:
                out = torch.zeros(part.shape[0], height * scale, width * scale)
            weight = wy[:, None] * _ramp(col, width, scale, overlap)[None, :]
            ys, xs = slice(row[0] * scale, row[1] * scale), slice(col[0] * scale, col[1] * scale)
            out[:, ys, xs] += part * weight
            total[ys, xs] += weight
    return (out / total).unsqueeze(0)


def count_tiles(height: int, width: int, tile: int, overlap: int) -> int:
    return len(tile_spans(height, tile, overlap)) * len(tile_spans(width, tile, overlap))
