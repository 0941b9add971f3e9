"""Aspect-ratio buckets: which training resolution each image lands in, for SDXL and for Flux.

- SDXL: the commonly used ~1 MP, 64-aligned list (1024×1024, 1152×896, 1216×832, 1344×768, 1536×640 and
  their portraits).
- Flux: kohya-style enumeration (sd-scripts' `make_bucket_resolutions`) at 1024² area on a 64-pixel grid with
  sides from 256 to 2048, which also satisfies Flux's multiple-of-16 constraint (VAE /8, 2×2 patches).

Selection follows sd-scripts' `BucketManager.select_bucket`: the bucket whose aspect ratio is nearest the
image's; the image is then scaled to cover it and center-cropped, so it is *upscaled* when either side is
smaller than the bucket's after matching the aspect ratio (trainers with `bucket_no_upscale` would instead
use a smaller bucket).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

Bucket = tuple[int, int]

SDXL_BUCKETS: list[Bucket] = [
    (1024, 1024),
    (1152, 896),
    (896, 1152),
    (1216, 832),
    (832, 1216),
    (1344, 768),
    (768, 1344),
    (1536, 640),
    (640, 1536),
]


def kohya_buckets(
    max_area: int = 1024 * 1024, min_size: int = 256, max_size: int = 2048, step: int = 64
) -> list[Bucket]:
    """sd-scripts' `make_bucket_resolutions`: the square plus every (w, h) on the grid with w·h ≤ max_area."""
    side = int(math.sqrt(max_area) // step) * step
    found = {(side, side)}
    width = min_size
    while width <= max_size:
        height = min(max_size, int((max_area // width) // step) * step)
        if height >= min_size:
            found.add((width, height))
            found.add((height, width))
        width += step
    return sorted(found)


FLUX_BUCKETS: list[Bucket] = kohya_buckets()
BUCKET_SETS: dict[str, list[Bucket]] = {"sdxl": SDXL_BUCKETS, "flux": FLUX_BUCKETS}
BUCKET_NOTES = {
    "sdxl": "SDXL's usual ~1 MP bucket list (9 resolutions, 64-aligned)",
    "flux": f"kohya-style buckets at 1024² area, 64-px grid, sides 256–2048 ({len(FLUX_BUCKETS)} resolutions)",
}


def nearest_bucket(width: int, height: int, buckets: list[Bucket]) -> Bucket:
    """The bucket with the aspect ratio nearest the image's (ties: the first in the list)."""
    aspect = width / height
    return min(buckets, key=lambda b: abs(b[0] / b[1] - aspect))


class Nearest:
    """The index of the value nearest `x` (ties: the lowest index), by bisection: what
    `min(range(len(values)), key=lambda i: abs(values[i] - x))` returns, in O(log n) per call (statistics
    place thousands of distinct sizes among the ~70 Flux buckets)."""

    def __init__(self, values: Sequence[float]) -> None:
        self.keys: list[float] = []
        self.index: list[int] = []
        for i in sorted(range(len(values)), key=lambda i: (values[i], i)):
            if not self.keys or self.keys[-1] != values[i]:  # equal values: the lowest index answers
                self.keys.append(values[i])
                self.index.append(i)

    def __call__(self, x: float) -> int:
        keys, index = self.keys, self.index
        k = bisect.bisect_left(keys, x)
        if k == 0:
            return index[0]
        if k == len(keys):
            return index[-1]
        below, above = x - keys[k - 1], keys[k] - x  # keys[k-1] < x <= keys[k]
        if below != above:
            return index[k - 1] if below < above else index[k]
        return min(index[k - 1], index[k])


def is_upscaled(width: int, height: int, bucket: Bucket) -> bool:
    """Whether covering `bucket` needs the image enlarged (the scale to cover it exceeds 1)."""
    return max(bucket[0] / width, bucket[1] / height) > 1


def label(bucket: Bucket) -> str:
    return f"{bucket[0]}x{bucket[1]}"
