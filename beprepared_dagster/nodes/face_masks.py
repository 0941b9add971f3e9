"""How Anonymize hides a face box: blur (box blur with a kernel half the box size, inside an ellipse or the
whole box), solid black, or a mosaic of `mosaic_size`-pixel cells. Pure Pillow, on decoded images."""

from __future__ import annotations

from typing import Any


def scaled_box(box: list[float], scale: float, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The face box scaled around its centre and clipped to the image; None when nothing is left."""
    x1, y1, x2, y2 = box[:4]
    cx, cy, half_w, half_h = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * scale / 2, (y2 - y1) * scale / 2
    left, top = max(0, round(cx - half_w)), max(0, round(cy - half_h))
    right, bottom = min(width, round(cx + half_w)), min(height, round(cy + half_h))
    return (left, top, right, bottom) if right - left >= 1 and bottom - top >= 1 else None


def hide(
    image: Any, faces: list[list[float]], method: str, mask_scale: float, ellipse: bool, mosaic_size: int
) -> Any:
    """A copy of `image` with every face hidden by `method` ("blur", "solid" or "mosaic")."""
    if image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    out = image.copy()
    for face in faces:
        box = scaled_box(face, mask_scale, image.width, image.height)
        if box is not None:
            _hide_one(out, box, method, ellipse, mosaic_size)
    return out


def _hide_one(out: Any, box: tuple[int, int, int, int], method: str, ellipse: bool, mosaic_size: int) -> None:
    from PIL import Image, ImageDraw, ImageFilter

    width, height = box[2] - box[0], box[3] - box[1]
    region = out.crop(box)
    if method == "solid":
        black = {"RGB": (0, 0, 0), "RGBA": (0, 0, 0, 255), "L": 0}[out.mode]
        out.paste(Image.new(out.mode, (width, height), black), box[:2])
        return
    if method == "mosaic":
        cells = (max(1, -(-width // mosaic_size)), max(1, -(-height // mosaic_size)))
        small = region.resize(cells, Image.Resampling.BOX)
        out.paste(small.resize((width, height), Image.Resampling.NEAREST), box[:2])
        return
    blurred = region.filter(ImageFilter.BoxBlur((max(1, width // 4), max(1, height // 4))))
    mask = None
    if ellipse:
        mask = Image.new("L", (width, height), 0)
        ImageDraw.Draw(mask).ellipse([0, 0, width - 1, height - 1], fill=255)
    out.paste(blurred, box[:2], mask)
