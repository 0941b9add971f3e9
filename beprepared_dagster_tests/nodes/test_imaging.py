"""Unit tests of `nodes.imaging`: probing every committed fixture image, and turning every kind of bad file
into `BadImage` with a reason a user understands.

Expected values come from `beprepared_dagster_tests/data/README.md`.

Not covered here: re-encoding (`imaging.convert`, see test_convert_format.py), ICC colour management of CMYK
images with an embedded profile (no fixture has one), MPO files, and the Load stage that calls `probe`
(executor tests).
"""

from __future__ import annotations

import io

import pytest

from beprepared_dagster.errors import BadImage, BeprepareError
from beprepared_dagster.nodes import imaging
from beprepared_dagster_tests.conftest import BAD_FIXTURES, DATA, GOOD_FIXTURES

# name: (format, mode, displayed width, displayed height, ext, orientation)
EXPECTED = {
    "64x48.jpg": ("JPEG", "RGB", 64, 48, ".jpg", 1),
    "640x480.jpg": ("JPEG", "RGB", 640, 480, ".jpg", 1),
    "rgba-32x32.png": ("PNG", "RGBA", 32, 32, ".png", 1),
    "palette-transparent-32x32.png": ("PNG", "P", 32, 32, ".png", 1),
    "cmyk-40x30.jpg": ("JPEG", "CMYK", 40, 30, ".jpg", 1),
    "gray16-48x32.png": ("PNG", "I;16", 48, 32, ".png", 1),
    "exif-rotated-60x40.jpg": ("JPEG", "RGB", 40, 60, ".jpg", 6),
    "UPPER-CASE.JPG": ("JPEG", "RGB", 32, 24, ".jpg", 1),
    "lower.jpeg": ("JPEG", "RGB", 24, 32, ".jpg", 1),
    "ünïcode-名前.png": ("PNG", "RGB", 20, 20, ".png", 1),
    "anim-2frames.gif": ("GIF", "P", 16, 16, ".gif", 1),
    "bitmap.bmp": ("BMP", "RGB", 16, 12, ".bmp", 1),
    "tiff-rgb.tiff": ("TIFF", "RGB", 24, 16, ".tiff", 1),
    "webp-rgb.webp": ("WEBP", "RGB", 24, 24, ".webp", 1),
    "webp-as-png.png": ("WEBP", "RGB", 20, 16, ".webp", 1),
}

BAD_REASONS = {
    "zero-bytes.jpg": "empty",
    "truncated.jpg": "truncated",
    "text-file.jpg": "not an image",
    "bomb.png": "decompression bomb",
}


def test_expectations_cover_every_fixture():
    assert set(EXPECTED) == set(GOOD_FIXTURES)
    assert set(BAD_REASONS) == set(BAD_FIXTURES)


@pytest.mark.parametrize("name", GOOD_FIXTURES)
def test_probe_good_fixture(name):
    fmt, mode, width, height, ext, turn = EXPECTED[name]
    info = imaging.probe((DATA / name).read_bytes())
    assert info == {
        "format": fmt,
        "mode": mode,
        "width": width,
        "height": height,
        "ext": ext,
        "orientation": turn,
    }


def test_probe_reports_displayed_size_of_exif_rotated_image():
    info = imaging.probe((DATA / "exif-rotated-60x40.jpg").read_bytes())
    # Stored 60x40, orientation 6 (rotate 90°): a trainer sees a 40x60 portrait.
    assert (info["width"], info["height"]) == (40, 60)


def test_probe_takes_the_extension_from_the_content_not_the_name():
    info = imaging.probe((DATA / "webp-as-png.png").read_bytes())
    assert info["format"] == "WEBP"
    assert info["ext"] == ".webp"


@pytest.mark.parametrize("name", BAD_FIXTURES)
def test_probe_bad_fixture_raises_bad_image_with_a_clear_reason(name):
    with pytest.raises(BadImage) as info:
        imaging.probe((DATA / name).read_bytes())
    assert BAD_REASONS[name] in str(info.value)
    # The reason is about the bytes, not a Python traceback or a temp path.
    assert "<_io.BytesIO" not in str(info.value)
    assert isinstance(info.value, BeprepareError)


def test_bomb_does_not_leak_an_exception_that_is_not_bad_image():
    # DecompressionBombError is not an OSError: it must still become BadImage.
    with pytest.raises(BadImage, match="decompression bomb refused"):
        imaging.open_image((DATA / "bomb.png").read_bytes())


def test_truncated_image_opens_but_fails_on_full_decode():
    data = (DATA / "truncated.jpg").read_bytes()
    image = imaging.open_image(data)  # the header is fine
    assert image.size == (200, 150)
    with pytest.raises(BadImage, match="truncated image data"):
        imaging.load_fully(image)


def test_probe_leaves_pillow_globals_alone():
    from PIL import Image, ImageFile

    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    for name in BAD_FIXTURES:
        with pytest.raises(BadImage):
            imaging.probe((DATA / name).read_bytes())
    assert before == (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)


def test_unsupported_format_is_a_bad_image():
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, "PPM")
    with pytest.raises(BadImage, match="unsupported format PPM"):
        imaging.probe(out.getvalue())


def test_random_bytes_with_a_jpeg_signature_are_a_bad_image():
    with pytest.raises(BadImage):
        imaging.probe(b"\xff\xd8\xff\xe0" + b"\x00garbage" * 20)


def test_probe_of_generated_images(tmp_path):
    from beprepared_dagster_tests.conftest import make_image

    for fmt, ext in [("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp"), ("BMP", ".bmp")]:
        path = make_image(tmp_path / f"x{ext}", 33, 17, seed=3, fmt=fmt)
        info = imaging.probe(path.read_bytes())
        assert (info["format"], info["ext"], info["width"], info["height"]) == (fmt, ext, 33, 17)


def test_probe_ignores_a_broken_exif_orientation():
    from PIL import Image

    image = Image.new("RGB", (30, 10), "red")
    exif = Image.Exif()
    exif[0x0112] = 42  # not a valid orientation value
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    info = imaging.probe(out.getvalue())
    assert (info["width"], info["height"]) == (30, 10)
