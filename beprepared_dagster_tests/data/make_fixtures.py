#!/usr/bin/env python
"""Regenerate the tiny committed test images in ``images/`` next to this file.

Run from anywhere:

    python beprepared_dagster_tests/data/make_fixtures.py

Everything is synthetic and deterministic (gradients, fixed patterns, and a
``random.Random`` with a fixed seed where noise is wanted). Only Pillow and the
standard library are used. Byte-for-byte output can still differ across
Pillow / libjpeg / libwebp / zlib versions, so tests should assert on what the
files *are* (mode, size, failure type) as listed in README.md, never on hashes.

Each file name says what the file is; see README.md for what a test should
expect from each one.
"""

from __future__ import annotations

import io
import random
import struct
import unicodedata
import zlib
from pathlib import Path

from PIL import Image, ImageDraw

OUT_DIR = Path(__file__).resolve().parent / "images"

# NFC-normalised so the name is the same byte sequence on every platform that
# does not renormalise (macOS HFS+ would store NFD).
UNICODE_NAME = unicodedata.normalize("NFC", "ünïcode-名前.png")

EXIF_ORIENTATION = 0x0112


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _gradient_rgb(width: int, height: int, blue: int = 128) -> Image.Image:
    """Red ramps left->right, green ramps top->bottom, constant blue."""
    data = bytearray()
    for y in range(height):
        g = (y * 255) // max(height - 1, 1)
        for x in range(width):
            r = (x * 255) // max(width - 1, 1)
            data += bytes((r, g, blue))
    return Image.frombytes("RGB", (width, height), bytes(data))


def _solid(width: int, height: int, color: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", (width, height), color)


def _write(name: str, data: bytes) -> Path:
    path = OUT_DIR / name
    path.write_bytes(data)
    return path


def _encode(img: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


# --------------------------------------------------------------------------
# good images
# --------------------------------------------------------------------------


def make_64x48_jpg() -> bytes:
    return _encode(_gradient_rgb(64, 48), "JPEG", quality=90)


def make_640x480_jpg() -> bytes:
    img = _gradient_rgb(640, 480, blue=64)
    draw = ImageDraw.Draw(img)
    # A few fixed shapes so the image is not a pure gradient.
    draw.rectangle((40, 40, 200, 160), fill=(240, 240, 240))
    draw.ellipse((300, 120, 560, 380), fill=(20, 60, 200))
    return _encode(img, "JPEG", quality=85)


def make_rgba_png() -> bytes:
    img = Image.new("RGBA", (32, 32), (0, 128, 255, 255))  # opaque blue
    draw = ImageDraw.Draw(img)
    draw.rectangle((8, 8, 23, 23), fill=(255, 0, 0, 128))  # semi-transparent red
    draw.rectangle((0, 0, 3, 3), fill=(0, 0, 0, 0))  # fully transparent corner
    return _encode(img, "PNG", optimize=True)


def make_palette_transparent_png() -> bytes:
    img = Image.new("P", (32, 32), 0)
    palette = [0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]  # idx 0..3
    img.putpalette(palette)
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 15, 15), fill=1)
    draw.rectangle((16, 0, 31, 15), fill=2)
    draw.rectangle((0, 16, 15, 31), fill=3)
    # bottom-right quadrant stays index 0 = transparent
    return _encode(img, "PNG", transparency=0)


def make_cmyk_jpg() -> bytes:
    img = Image.new("CMYK", (40, 30), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 19, 29), fill=(255, 0, 0, 0))  # cyan left half
    draw.rectangle((20, 0, 39, 29), fill=(0, 255, 0, 0))  # magenta right half
    draw.rectangle((15, 10, 24, 19), fill=(0, 0, 0, 255))  # black square
    return _encode(img, "JPEG", quality=90)


def make_gray16_png() -> bytes:
    width, height = 48, 32
    n = width * height
    # Row-major ramp: first pixel 0, last pixel 65535.
    values = [(i * 65535) // (n - 1) for i in range(n)]
    raw = struct.pack(f"<{n}H", *values)
    img = Image.frombytes("I;16", (width, height), raw)
    return _encode(img, "PNG")


def make_exif_rotated_jpg() -> bytes:
    # Stored pixels: 60 wide x 40 high, left half red, right half blue.
    img = _solid(60, 40, (0, 0, 255))
    ImageDraw.Draw(img).rectangle((0, 0, 29, 39), fill=(255, 0, 0))
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # rotate 90 CW to display -> 40x60
    return _encode(img, "JPEG", quality=95, exif=exif.tobytes())


def make_upper_case_jpg() -> bytes:
    img = _solid(32, 24, (0, 160, 0))  # green
    ImageDraw.Draw(img).rectangle((8, 6, 23, 17), fill=(255, 255, 255))
    return _encode(img, "JPEG", quality=90)


def make_lower_jpeg() -> bytes:
    img = _solid(24, 32, (160, 0, 160))  # purple, portrait
    ImageDraw.Draw(img).ellipse((4, 8, 19, 23), fill=(255, 200, 0))
    return _encode(img, "JPEG", quality=90)


def make_unicode_png() -> bytes:
    return _encode(_gradient_rgb(20, 20, blue=200), "PNG")


def make_anim_gif() -> bytes:
    f1 = Image.new("P", (16, 16), 0)
    f1.putpalette([255, 0, 0, 0, 0, 255])  # 0 red, 1 blue
    ImageDraw.Draw(f1).rectangle((0, 0, 7, 15), fill=1)  # left blue, right red
    f2 = Image.new("P", (16, 16), 1)
    f2.putpalette([255, 0, 0, 0, 0, 255])
    ImageDraw.Draw(f2).rectangle((0, 0, 7, 15), fill=0)  # left red, right blue
    return _encode(f1, "GIF", save_all=True, append_images=[f2], duration=100, loop=0)


def make_bmp() -> bytes:
    img = _solid(16, 12, (255, 128, 0))  # orange
    ImageDraw.Draw(img).rectangle((4, 3, 11, 8), fill=(0, 0, 0))
    return _encode(img, "BMP")


def make_tiff() -> bytes:
    img = _gradient_rgb(24, 16, blue=0)
    return _encode(img, "TIFF", compression="tiff_deflate")


def make_webp() -> bytes:
    img = _solid(24, 24, (0, 200, 200))  # teal
    ImageDraw.Draw(img).rectangle((6, 6, 17, 17), fill=(200, 0, 0))
    return _encode(img, "WEBP", lossless=True)


def make_webp_as_png() -> bytes:
    img = _solid(20, 16, (250, 250, 0))  # yellow
    ImageDraw.Draw(img).rectangle((5, 4, 14, 11), fill=(0, 0, 0))
    return _encode(img, "WEBP", lossless=True)


# --------------------------------------------------------------------------
# bad files
# --------------------------------------------------------------------------


def make_truncated_jpg() -> bytes:
    # 200x150 gradient with seeded noise so the entropy-coded data dominates the
    # file; cut to half so the headers parse but the scan data ends early.
    rng = random.Random(1234)
    base = _gradient_rgb(200, 150)
    noise = bytes(rng.randrange(256) for _ in range(200 * 150 * 3))
    noisy = Image.blend(base, Image.frombytes("RGB", (200, 150), noise), 0.3)
    full = _encode(noisy, "JPEG", quality=75)
    return full[: len(full) // 2]


def make_text_file_jpg() -> bytes:
    return (
        "This is a plain UTF-8 text file wearing a .jpg extension.\n"
        "It is not an image — Pillow must reject it. ✓\n"
    ).encode()


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def make_bomb_png(width: int = 14000, height: int = 14000) -> bytes:
    """Valid 1-bit grayscale PNG, all black, written chunk-by-chunk.

    width*height = 196,000,000 > 2 * 89,478,485 (Pillow's default
    MAX_IMAGE_PIXELS), so Image.open raises DecompressionBombError. The image
    is never materialised: zero rows are streamed through zlib.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit gray
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte 0 + packed bits
    comp = zlib.compressobj(9)
    parts = [comp.compress(row) for _ in range(height)]
    parts.append(comp.flush())
    idat = b"".join(parts)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------


FIXTURES = {
    "64x48.jpg": make_64x48_jpg,
    "640x480.jpg": make_640x480_jpg,
    "rgba-32x32.png": make_rgba_png,
    "palette-transparent-32x32.png": make_palette_transparent_png,
    "cmyk-40x30.jpg": make_cmyk_jpg,
    "gray16-48x32.png": make_gray16_png,
    "exif-rotated-60x40.jpg": make_exif_rotated_jpg,
    "UPPER-CASE.JPG": make_upper_case_jpg,
    "lower.jpeg": make_lower_jpeg,
    UNICODE_NAME: make_unicode_png,
    "anim-2frames.gif": make_anim_gif,
    "bitmap.bmp": make_bmp,
    "tiff-rgb.tiff": make_tiff,
    "webp-rgb.webp": make_webp,
    "webp-as-png.png": make_webp_as_png,
    # bad files
    "zero-bytes.jpg": lambda: b"",
    "truncated.jpg": make_truncated_jpg,
    "text-file.jpg": make_text_file_jpg,
    "bomb.png": make_bomb_png,
}


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, make in FIXTURES.items():
        path = _write(name, make())
        print(f"{path.stat().st_size:>8}  {path.relative_to(OUT_DIR.parent)}")


if __name__ == "__main__":
    main()
