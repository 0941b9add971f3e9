"""Images as Chat Completions send them: a base64 data URL.

An image within `max_edge` in a format every server reads (JPEG, PNG, WebP) goes as its own bytes, in its
real format (the original re-encoded everything as PNG by mistake, several times larger). A larger one, an
EXIF-rotated one, or another format (GIF, BMP, TIFF, CMYK) is decoded, turned upright, downscaled to
`max_edge` and sent as a JPEG (alpha composited on white)."""

from __future__ import annotations

import base64
import io
from typing import Any

from beprepared_dagster.errors import BadImage
from beprepared_dagster.nodes.imaging import load_fully, open_image, orientation

AS_IS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
JPEG_QUALITY = 90


def data_url(data: bytes, max_edge: int | None) -> str:
    """`data:image/…;base64,…` for the image bytes; raises BadImage for bytes Pillow cannot read."""
    image = open_image(data)
    fmt = "JPEG" if image.format == "MPO" else image.format
    fits = max_edge is None or max(image.size) <= max_edge
    if fits and fmt in AS_IS and orientation(image) == 1 and image.mode in ("RGB", "RGBA", "L", "LA", "P"):
        return _url(AS_IS[fmt], data)
    return _url("image/jpeg", _jpeg(image, max_edge))


def _jpeg(image: Any, max_edge: int | None) -> bytes:
    from PIL import Image, ImageOps

    if image.format in ("JPEG", "MPO"):
        if max_edge:
            image.draft("RGB", (max_edge, max_edge))  # decode at a reduced scale, never below max_edge
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise BadImage(f"corrupt image data: {exc}") from None
    else:
        load_fully(image)
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        image = background
    elif image.mode.startswith("I;16") or image.mode == "I":
        image = image.point(lambda v: v / 256).convert("L")
    image = image.convert("RGB")
    if max_edge and max(image.size) > max_edge:
        image.thumbnail((max_edge, max_edge), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def _url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
