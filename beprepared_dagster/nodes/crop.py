"""CropToAspect: centre-crop each image to the closest of a list of aspect ratios."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from beprepared_dagster.nodes import pixels
from beprepared_dagster.nodes.base import Image, NodeContext, TransformNode

# Formats a crop is written back in; anything else (GIF's 256 colours, odd TIFFs) becomes PNG.
_KEEP_FORMATS = {"JPEG", "PNG", "WEBP"}


def _ratios(value: Any) -> list[float]:
    items = [value] if isinstance(value, int | float) and not isinstance(value, bool) else value
    if isinstance(items, str) or not isinstance(items, list | tuple) or not items:
        raise ValueError(f"aspect_ratios must be a non-empty list of width/height ratios, got {value!r}")
    bad = [r for r in items if isinstance(r, bool) or not isinstance(r, int | float) or not 0 < r < math.inf]
    if bad:
        raise ValueError(f"aspect_ratios must be positive numbers (width / height), got {bad[0]!r}")
    return sorted({float(r) for r in items})


class CropToAspect(TransformNode):
    """Centre-crop every image to whichever of `aspect_ratios` (width / height) is closest to its own.

    Closeness is measured on a log scale, so 2:1 and 1:2 are equally far from 1:1. An image already at its
    target ratio keeps its bytes. Crops keep the source format (GIF, BMP and TIFF become PNG); `ext`,
    `format`, `width` and `height` follow. Every image gets `crop_target_ratio`, `crop_original_width` and
    `crop_original_height`, so a later `Filter` can pick one ratio.

    Args:
        aspect_ratios: the allowed ratios, e.g. `[0.75, 1.0, 4 / 3]`.
        quality: JPEG/WEBP quality of cropped images (the original used 95).
    """

    version: ClassVar[int] = 1
    reads: ClassVar[tuple[str, ...]] = ("objectid", "width", "height", "orientation", "format")
    description: ClassVar[str] = "Images centre-cropped to the closest of the ratios {aspect_ratios}."
    writes: ClassVar[tuple[str, ...]] = (
        "objectid",
        "format",
        "ext",
        "width",
        "height",
        "orientation",
        "mode",
        "crop_target_ratio",
        "crop_original_width",
        "crop_original_height",
    )

    def __init__(self, aspect_ratios: list[float], quality: int = 95) -> None:
        self.ratios = self.params["aspect_ratios"] = _ratios(aspect_ratios)
        self.quality = pixels.check_quality(quality)

    def target_ratio(self, width: int, height: int) -> float:
        actual = math.log(width / height)
        return min(self.ratios, key=lambda r: abs(math.log(r) - actual))

    def transform(self, image: Image, ctx: NodeContext) -> dict[str, Any]:
        width, height = image.width, image.height
        ratio = self.target_ratio(width, height)
        box = crop_box(width, height, ratio)
        info = {"crop_target_ratio": ratio, "crop_original_width": width, "crop_original_height": height}
        if box == (0, 0, width, height):
            return info
        decoded, icc = pixels.open_upright(ctx.objects.read(image.objectid))
        target = image.format if image.format in _KEEP_FORMATS else "PNG"
        data = pixels.encode(decoded.crop(box), target, self.quality, icc)
        return {**pixels.store(ctx, data, target), **info}


def crop_box(width: int, height: int, ratio: float) -> tuple[int, int, int, int]:
    """The centred (left, top, right, bottom) box of `ratio` inside a width × height image."""
    if width / height > ratio:  # too wide: trim left and right
        new_width = max(1, min(width, round(height * ratio)))
        left = (width - new_width) // 2
        return left, 0, left + new_width, height
    new_height = max(1, min(height, round(width / ratio)))
    top = (height - new_height) // 2
    return 0, top, width, top + new_height
