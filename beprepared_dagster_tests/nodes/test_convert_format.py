"""Unit tests of ConvertFormat (and `imaging.convert` under it), run through `process`/`transform` with a real
object store: alpha flattening, palette/CMYK/16-bit handling, EXIF orientation, pass-through, and the
properties the node sets.

Pixels of lossy outputs are checked with a tolerance (JPEG never round-trips exactly).

Not covered here: ICC profile preservation and CMYK profile conversion (no fixture carries a profile), the
cache key of ConvertFormat (executor tests), and WEBP/GIF/BMP/TIFF beyond "decodes at the right size".
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from PIL import Image as PILImage

from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.nodes import ConvertFormat, Image, NodeContext, imaging
from beprepared_dagster.store.objects import ObjectStore
from beprepared_dagster_tests.conftest import DATA, GOOD_FIXTURES


@pytest.fixture
def ctx(tmp_path: Path) -> NodeContext:
    return NodeContext(objects=ObjectStore(tmp_path / "objects"), log=logging.getLogger("test"))


def load(ctx: NodeContext, name: str) -> Image:
    """An image as the Load stage leaves it: object id + probe."""
    data = (DATA / name).read_bytes()
    object_id = ctx.objects.put_bytes(data)
    return Image({"objectid": object_id, "original_path": f"/photos/{name}", **imaging.probe(data)})


def convert(ctx: NodeContext, name: str, target: str) -> tuple[dict, PILImage.Image]:
    node = ConvertFormat(target)
    source = load(ctx, name)
    [outcome] = node.process([source], ctx)
    assert outcome.kept
    props = outcome.set
    assert props, f"{name} → {target} was passed through"
    assert props["objectid"] != source.objectid
    assert ctx.objects.has(props["objectid"])
    decoded = PILImage.open(io.BytesIO(ctx.objects.read(props["objectid"])))
    decoded.load()
    assert decoded.format == props["format"] == node.format
    assert decoded.size == (props["width"], props["height"])
    assert decoded.mode == props["mode"]
    assert props["ext"] == imaging.FORMAT_EXTENSIONS[node.format]
    assert props["orientation"] == 1
    return props, decoded


def close(actual, expected, tolerance: int = 6) -> bool:
    if isinstance(actual, int):
        actual, expected = (actual,), (expected,)
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


# --- alpha, palette, CMYK, 16-bit ------------------------------------------------------------------------


def test_rgba_to_jpeg_composites_alpha_on_white(ctx):
    props, out = convert(ctx, "rgba-32x32.png", "JPEG")
    assert out.mode == "RGB"
    assert (props["width"], props["height"]) == (32, 32)
    # Fully transparent corner → white (not black, which is what a naive convert("RGB") gives).
    assert close(out.getpixel((1, 1)), (255, 255, 255))
    # Red at alpha 128 over white → pink.
    assert close(out.getpixel((16, 16)), (255, 127, 127), tolerance=8)
    # Opaque pixels keep their colour.
    assert close(out.getpixel((30, 30)), (0, 128, 255), tolerance=8)


def test_rgba_to_png_keeps_alpha(ctx):
    props, out = convert(ctx, "rgba-32x32.png", "WEBP")
    assert out.mode == "RGBA"
    assert out.getpixel((1, 1))[3] == 0


def test_palette_with_transparency_to_jpeg(ctx):
    _, out = convert(ctx, "palette-transparent-32x32.png", "JPEG")
    assert out.mode == "RGB"
    # Quadrants: red, green, blue, transparent (bottom-right) → white.
    assert close(out.getpixel((4, 4)), (255, 0, 0))
    assert close(out.getpixel((28, 4)), (0, 255, 0))
    assert close(out.getpixel((4, 28)), (0, 0, 255))
    assert close(out.getpixel((28, 28)), (255, 255, 255))


def test_palette_with_transparency_to_webp_keeps_transparency(ctx):
    _, out = convert(ctx, "palette-transparent-32x32.png", "WEBP")
    assert out.convert("RGBA").getpixel((28, 28))[3] == 0
    assert close(out.convert("RGBA").getpixel((4, 4)), (255, 0, 0, 255))  # lossy WEBP


@pytest.mark.parametrize("target", ["PNG", "JPEG"])
def test_cmyk_converts_to_rgb(ctx, target):
    """Also for JPEG → JPEG: a CMYK JPEG is already JPEG and upright, but it is not what a trainer expects
    (many read it with inverted or shifted colours), so it must not be passed through."""
    props, out = convert(ctx, "cmyk-40x30.jpg", target)
    assert out.mode == "RGB" and props["mode"] == "RGB"
    assert (props["width"], props["height"]) == (40, 30)
    assert close(out.getpixel((2, 2)), (0, 255, 255), tolerance=12)  # cyan half
    assert close(out.getpixel((37, 2)), (255, 0, 255), tolerance=12)  # magenta half
    assert close(out.getpixel((20, 15)), (0, 0, 0), tolerance=12)  # black square


def _gray16_expected(x: int, y: int) -> int:
    """The fixture's 16-bit ramp, row-major from 0 to 65535, scaled to 8 bits."""
    index = y * 48 + x
    return round(index * 65535 / (48 * 32 - 1)) >> 8


def test_gray16_to_jpeg_is_8_bit_gray_scaled_not_clipped(ctx):
    props, out = convert(ctx, "gray16-48x32.png", "JPEG")
    assert out.mode == "L" and props["mode"] == "L"
    assert (props["width"], props["height"]) == (48, 32)
    # A naive convert clips everything above 255 to white; scaled, the middle row is mid-grey.
    for x, y in [(0, 0), (24, 2), (24, 16), (10, 25), (47, 31)]:
        assert close(out.getpixel((x, y)), _gray16_expected(x, y), tolerance=4), (x, y)
    assert close(out.getpixel((24, 16)), 132, tolerance=4)


def test_gray16_tiff_to_png_keeps_16_bits(ctx, tmp_path):
    tiff = tmp_path / "gray16.tiff"
    PILImage.open(DATA / "gray16-48x32.png").save(tiff, "TIFF")
    data = tiff.read_bytes()
    source = Image({"objectid": ctx.objects.put_bytes(data), **imaging.probe(data)})
    assert (source.format, source.mode) == ("TIFF", "I;16")
    [outcome] = ConvertFormat("PNG").process([source], ctx)
    props = outcome.set
    out = PILImage.open(io.BytesIO(ctx.objects.read(props["objectid"])))
    assert out.format == "PNG" and props["mode"] == out.mode == "I;16"
    assert out.getextrema() == (0, 65535)
    assert out.getpixel((24, 16)) == round((16 * 48 + 24) * 65535 / (48 * 32 - 1))


def test_gray16_png_to_png_is_passed_through(ctx):
    """PNG stores 16-bit grey natively: nothing to convert, the original bytes (and bits) are kept."""
    [outcome] = ConvertFormat("PNG").process([load(ctx, "gray16-48x32.png")], ctx)
    assert outcome.set == {}


# --- orientation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["JPEG", "PNG"])
def test_exif_rotated_output_is_upright(ctx, target):
    props, out = convert(ctx, "exif-rotated-60x40.jpg", target)
    assert (props["width"], props["height"]) == (40, 60)
    assert out.size == (40, 60)
    # Displayed: top half red, bottom half blue; the output has no orientation left to apply.
    assert close(out.getpixel((20, 10)), (255, 0, 0), tolerance=10)
    assert close(out.getpixel((20, 50)), (0, 0, 255), tolerance=10)
    assert out.getexif().get(0x0112, 1) == 1


def test_rotated_output_is_upright_when_converted_again(ctx):
    """A second ConvertFormat on the converted image is a pass-through (it is upright now)."""
    props, _ = convert(ctx, "exif-rotated-60x40.jpg", "JPEG")
    source = load(ctx, "exif-rotated-60x40.jpg").with_props(**props)
    [outcome] = ConvertFormat("JPEG").process([source], ctx)
    assert outcome.set == {}


# --- pass-through ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "target"), [("64x48.jpg", "JPEG"), ("UPPER-CASE.JPG", "jpg"), ("webp-rgb.webp", "webp")]
)
def test_upright_image_already_in_the_target_format_is_passed_through(ctx, name, target):
    source = load(ctx, name)
    objects_before = sorted(p for p in ctx.objects.root.rglob("*") if p.is_file())
    [outcome] = ConvertFormat(target).process([source], ctx)
    assert outcome.kept and outcome.set == {}
    assert sorted(p for p in ctx.objects.root.rglob("*") if p.is_file()) == objects_before


def test_extension_follows_the_real_format(ctx):
    """webp-as-png.png is WEBP content: converting to PNG really converts and the ext becomes .png."""
    props, out = convert(ctx, "webp-as-png.png", "PNG")
    assert props["ext"] == ".png" and out.format == "PNG"
    [outcome] = ConvertFormat("WEBP").process([load(ctx, "webp-as-png.png")], ctx)
    assert outcome.set == {}


# --- every fixture, every format --------------------------------------------------------------------------


@pytest.mark.parametrize("target", imaging.WRITABLE_FORMATS)
@pytest.mark.parametrize("name", GOOD_FIXTURES)
def test_every_fixture_converts_to_every_format_at_its_displayed_size(ctx, name, target):
    source = load(ctx, name)
    [outcome] = ConvertFormat(target).process([source], ctx)
    if not outcome.set:
        assert source.format == target
        return
    props = outcome.set
    decoded = PILImage.open(io.BytesIO(ctx.objects.read(props["objectid"])))
    decoded.load()
    assert decoded.format == target
    assert decoded.size == (source.width, source.height) == (props["width"], props["height"])


def test_transform_output_is_deterministic(ctx):
    """Same input, same parameters → same object id (so the cache and the export stay stable)."""
    node = ConvertFormat("JPEG", quality=90)
    first = node.transform(load(ctx, "rgba-32x32.png"), ctx)
    second = node.transform(load(ctx, "rgba-32x32.png"), ctx)
    assert first == second


def test_quality_changes_the_bytes(ctx):
    low = ConvertFormat("JPEG", quality=10).transform(load(ctx, "640x480.jpg").with_props(orientation=6), ctx)
    high = ConvertFormat("JPEG", quality=95).transform(
        load(ctx, "640x480.jpg").with_props(orientation=6), ctx
    )
    assert low["objectid"] != high["objectid"]
    assert (
        ctx.objects.path(low["objectid"]).stat().st_size < ctx.objects.path(high["objectid"]).stat().st_size
    )


def test_bad_bytes_raise_bad_image(ctx):
    from beprepared_dagster.errors import BadImage

    object_id = ctx.objects.put_bytes(b"not an image")
    source = Image({"objectid": object_id, "format": "PNG", "orientation": 1, "mode": "RGB"})
    with pytest.raises(BadImage):
        ConvertFormat("JPEG").transform(source, ctx)


# --- parameters ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("jpg", "JPEG"),
        ("JPG", "JPEG"),
        (".jpg", "JPEG"),
        ("jpeg", "JPEG"),
        ("png", "PNG"),
        (".png", "PNG"),
        ("Webp", "WEBP"),
        (".webp", "WEBP"),
        ("tif", "TIFF"),
        ("tiff", "TIFF"),
    ],
)
def test_format_names_are_normalized(given, expected):
    node = ConvertFormat(given)
    assert node.format == expected
    # The canonical name is what the fingerprint sees, so "jpg" and "JPEG" share a cache.
    assert node.params["format"] == expected
    assert node.fingerprint == ConvertFormat(expected).fingerprint


@pytest.mark.parametrize("bad", ["heic", "avif", "", "pdf", 5])
def test_unknown_format_is_a_workflow_error(bad):
    with pytest.raises(WorkflowError) as info:
        ConvertFormat(bad)
    message = str(info.value)
    assert message.startswith("ConvertFormat:")
    assert "JPEG, PNG, WEBP" in message


@pytest.mark.parametrize("bad", [0, 101, 9.5, "high"])
def test_bad_quality_is_a_workflow_error(bad):
    with pytest.raises(WorkflowError, match="ConvertFormat: quality must be an integer from 1 to 100"):
        ConvertFormat("JPEG", quality=bad)


def test_a_batch_converts_on_several_threads_and_a_bad_image_fails_alone(ctx, monkeypatch):
    """Pillow releases the GIL while it decodes and encodes: a batch runs on the CPU pool's threads (one per
    core), and a bad image in it is rejected without taking the batch down."""
    import threading
    import time

    real, threads = imaging.convert, set()

    def recording(data, *args, **kwargs):
        threads.add(threading.current_thread().name)
        time.sleep(0.05)  # long enough for the pool to hand the next images to other threads
        return real(data, *args, **kwargs)

    monkeypatch.setattr(imaging, "convert", recording)
    images = [load(ctx, "640x480.jpg"), load(ctx, "cmyk-40x30.jpg")] * 3
    broken = Image({**images[0], "objectid": ctx.objects.put_bytes(b"\xff\xd8 not a jpeg")})
    outcomes = ConvertFormat("PNG").process([*images, broken], ctx)
    assert len(threads) >= 2 and all(name.startswith("pixels") for name in threads)
    assert [o.kept for o in outcomes] == [True] * 6 + [False]
    assert outcomes[-1].reason.startswith("bad image")


def test_png_compression_level_changes_bytes_not_pixels(ctx):
    source = load(ctx, "640x480.jpg")
    fast, small = (ConvertFormat("PNG", compress_level=level).process([source], ctx)[0] for level in (1, 9))
    a, b = (PILImage.open(io.BytesIO(ctx.objects.read(o.set["objectid"]))) for o in (fast, small))
    assert a.tobytes() == b.tobytes()
    assert len(ctx.objects.read(fast.set["objectid"])) > len(ctx.objects.read(small.set["objectid"]))
    # Only PNG's bytes depend on it: a JPEG conversion keeps the cache key it had before the parameter.
    assert "compress_level" not in ConvertFormat("JPEG").params
    assert ConvertFormat("PNG").params["compress_level"] == 1
    with pytest.raises(WorkflowError, match="compress_level must be an integer from 0 to 9"):
        ConvertFormat("PNG", compress_level=12)
