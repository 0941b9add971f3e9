"""Pixel helpers for the nodes that derive new bytes (Downscale, Upscale, CropToAspect): decode upright,
encode to a format, and describe the result as the properties a transform returns.

Mode handling and encoding follow `imaging.convert` (alpha composited on white for formats without alpha,
CMYK through its ICC profile, 16-bit grey scaled), so every derived image is one a trainer reads correctly.
"""

from __future__ import annotations

import io
from typing import Any

from beprepared_dagster.errors import BadImage
from beprepared_dagster.nodes import imaging

QUALITY_HELP = "an integer from 1 to 100"


def check_format(format: Any, param: str = "format") -> str:
    """The canonical Pillow name of a writable format ("jpg" → "JPEG"), or ValueError naming `param`."""
    name = str(format).upper().lstrip(".")
    target = {"JPG": "JPEG", "TIF": "TIFF"}.get(name, name)
    if not isinstance(format, str) or target not in imaging.WRITABLE_FORMATS:
        raise ValueError(f"{param} {format!r} is not one of {', '.join(imaging.WRITABLE_FORMATS)}")
    return target


def check_quality(quality: Any) -> int:
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be {QUALITY_HELP}, got {quality!r}")
    return quality


def open_upright(data: bytes, draft_size: tuple[int, int] | None = None) -> tuple[Any, bytes | None]:
    """Decode fully, EXIF orientation applied, CMYK → sRGB, palette/bilevel → RGB(A) (so resampling filters
    apply: Pillow resizes palette images with nearest-neighbour). Returns (image, ICC profile or None).

    `draft_size` (as displayed) lets a JPEG decode at a reduced DCT scale no smaller than that size, which
    makes downscaling a large photo several times cheaper.
    """
    from PIL import ImageOps

    image = imaging.open_image(data)
    icc = image.info.get("icc_profile")
    if draft_size is not None and image.format in ("JPEG", "MPO"):
        width, height = draft_size
        if imaging.orientation(image) in (5, 6, 7, 8):
            width, height = height, width
        image.draft(None, (width, height))
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        truncated = "truncated" in str(exc)
        raise BadImage(
            "truncated image data (the file ends early)" if truncated else f"corrupt: {exc}"
        ) from None
    image = ImageOps.exif_transpose(image)
    if image.mode == "CMYK":
        # Private in imaging, shared on purpose: one place decides how CMYK becomes sRGB.
        image, icc = imaging._cmyk_to_srgb(image, icc), None
    if image.mode in ("P", "PA", "1"):
        transparent = image.mode == "PA" or "transparency" in image.info
        image = image.convert("RGBA" if transparent else ("L" if image.mode == "1" else "RGB"))
    return image, icc


def encode(
    image: Any, target: str, quality: int, icc: bytes | None, compress_level: int = imaging.PNG_COMPRESS_LEVEL
) -> bytes:
    """Encode a decoded image to `target` with the same rules as `imaging.convert`."""
    from PIL import Image

    image = imaging._to_mode_for(image, target, Image)
    options: dict[str, Any] = {}
    if icc and image.mode in ("RGB", "RGBA", "L") and target in ("JPEG", "PNG", "WEBP", "TIFF"):
        options["icc_profile"] = icc
    if target in ("JPEG", "WEBP"):
        options["quality"] = quality
    if target == "JPEG":
        options["subsampling"] = 0 if quality >= 90 else 2
    if target == "PNG":
        options["compress_level"] = compress_level
    out = io.BytesIO()
    image.save(out, format=target, **options)
    return out.getvalue()


def store(ctx: Any, data: bytes, target: str) -> dict[str, Any]:
    """Store derived bytes; the properties that describe them (the partition, i.e. identity, stays)."""
    decoded = imaging.open_image(data)
    return {
        "objectid": ctx.objects.put_bytes(data),
        "format": target,
        "ext": imaging.FORMAT_EXTENSIONS[target],
        "width": decoded.width,
        "height": decoded.height,
        "orientation": 1,
        "mode": decoded.mode,
    }


def check_pixels(width: int, height: int) -> None:
    """Refuse an output larger than Pillow's decompression-bomb limit (a 40×40000 strip upscaled to a
    1024-pixel short side would be 1 gigapixel): deterministic, so it becomes a cached rejection."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > limit:
        raise BadImage(f"result would be {width}x{height}, over Pillow's limit of {limit} pixels")
