"""Unit tests of Downscale and Upscale through `transform` with a real object store: sizes, exact edges,
pass-through, alpha/palette/CMYK/16-bit/EXIF handling, the original's Upscale bug, and parameter errors.

Not covered here: the cache key of the stage (executor tests) and the SwinIR/ESRGAN model path (here only
that those methods build the model node; see pixels/test_upscale_model.py).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from PIL import Image as PILImage

from beprepared_dagster import Load, Save, Workflow
from beprepared_dagster.errors import BadImage, WorkflowError
from beprepared_dagster.nodes import Downscale, Image, NodeContext, Upscale, UpscaleMethod, imaging
from beprepared_dagster.nodes.scaling import fit
from beprepared_dagster.store.objects import ObjectStore
from beprepared_dagster_tests.conftest import DATA, make_images


@pytest.fixture
def ctx(tmp_path: Path) -> NodeContext:
    return NodeContext(objects=ObjectStore(tmp_path / "objects"), log=logging.getLogger("test"))


def put(ctx: NodeContext, data: bytes, name: str = "photo.jpg") -> Image:
    """An image as Load leaves it."""
    return Image(
        {"objectid": ctx.objects.put_bytes(data), "original_path": f"/p/{name}", **imaging.probe(data)}
    )


def fixture(ctx: NodeContext, name: str) -> Image:
    return put(ctx, (DATA / name).read_bytes(), name)


def encoded(image: PILImage.Image, fmt: str = "JPEG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def decode(ctx: NodeContext, props: dict) -> PILImage.Image:
    image = PILImage.open(io.BytesIO(ctx.objects.read(props["objectid"])))
    image.load()
    return image


def quadrants(width: int, height: int) -> PILImage.Image:
    """Red top-left, green top-right, blue bottom-left, white bottom-right: survives resizing."""
    image = PILImage.new("RGB", (width, height))
    w, h = width // 2, height // 2
    for box, colour in [((0, 0, w, h), "red"), ((w, 0, width, h), "lime"), ((0, h, w, height), "blue")]:
        image.paste(colour, box)
    image.paste("white", (w, h, width, height))
    return image


def near(actual, expected, tolerance: int = 12) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


# --- Downscale ---------------------------------------------------------------------------------------------


def test_downscale_max_edge_shrinks_the_longer_side_and_describes_the_new_bytes(ctx):
    source = put(ctx, encoded(quadrants(640, 480)))
    props = Downscale(max_edge=320).transform(source, ctx)
    assert props["objectid"] != source.objectid and ctx.objects.has(props["objectid"])
    out = decode(ctx, props)
    assert out.size == (props["width"], props["height"]) == (320, 240)
    assert (props["format"], props["ext"], out.format) == ("PNG", ".png", "PNG")  # the original's default
    assert props["mode"] == out.mode == "RGB"
    assert props["downscale_info"] == {
        "method": "PIL",
        "max_edge": 320,
        "original_width": 640,
        "original_height": 480,
        "scaled_width": 320,
        "scaled_height": 240,
    }
    assert near(out.getpixel((40, 40)), (255, 0, 0)) and near(out.getpixel((280, 200)), (255, 255, 255))


def test_downscale_min_edge_shrinks_the_shorter_side_to_exactly_min_edge(ctx):
    source = put(ctx, encoded(quadrants(480, 640)))
    props = Downscale(min_edge=240, format="jpg").transform(source, ctx)
    assert (props["width"], props["height"]) == (240, 320)
    assert (props["format"], props["ext"]) == ("JPEG", ".jpg")
    assert decode(ctx, props).size == (240, 320)
    assert props["downscale_info"]["min_edge"] == 240 and "max_edge" not in props["downscale_info"]


@pytest.mark.parametrize(
    ("node", "size"), [(Downscale(max_edge=640), (640, 480)), (Downscale(min_edge=600), (640, 480))]
)
def test_downscale_leaves_images_within_the_bound_untouched(ctx, node, size):
    source = put(ctx, encoded(quadrants(*size)))
    stored = sorted(ctx.objects.root.rglob("*"))
    assert node.transform(source, ctx) == {}
    assert sorted(ctx.objects.root.rglob("*")) == stored


@pytest.mark.parametrize("shorter", [True, False])
def test_the_constrained_edge_is_exact_for_awkward_sizes(shorter):
    for width, height in [(1001, 333), (333, 1001), (999, 1000), (7, 3000), (3000, 7), (1234, 1234)]:
        for edge in (1, 2, 97, 500, 511):
            w, h = fit(width, height, edge, shorter)
            assert (min(w, h) if shorter else max(w, h)) == edge, (width, height, edge)
            assert w >= 1 and h >= 1
            # The other side is the exact proportional size, rounded (never below one pixel).
            scale = edge / (min(width, height) if shorter else max(width, height))
            assert abs(w - width * scale) <= 0.5 or w == 1, (width, height, edge)
            assert abs(h - height * scale) <= 0.5 or h == 1, (width, height, edge)


def test_downscale_of_an_exif_rotated_photo_is_upright_at_its_displayed_size(ctx):
    source = fixture(ctx, "exif-rotated-60x40.jpg")  # displayed 40x60: red top, blue bottom
    props = Downscale(max_edge=30).transform(source, ctx)
    out = decode(ctx, props)
    assert out.size == (20, 30) and props["orientation"] == 1
    assert near(out.getpixel((10, 5)), (255, 0, 0), 30) and near(out.getpixel((10, 25)), (0, 0, 255), 30)


def test_downscale_keeps_alpha_in_png_and_composites_it_on_white_for_jpeg(ctx):
    source = fixture(ctx, "rgba-32x32.png")
    png = decode(ctx, Downscale(max_edge=16).transform(source, ctx))
    assert png.mode == "RGBA" and png.getpixel((0, 0))[3] == 0
    jpeg = decode(ctx, Downscale(max_edge=16, format="JPEG").transform(source, ctx))
    assert jpeg.mode == "RGB" and near(jpeg.getpixel((0, 0)), (255, 255, 255))


def test_palette_image_is_resampled_smoothly_not_nearest_neighbour(ctx):
    """Pillow resizes palette images with nearest-neighbour whatever filter is asked for; a Lanczos
    downscale of a hard red/blue edge must produce intermediate colours."""
    image = PILImage.new("RGB", (64, 64), "red")
    image.paste("blue", (31, 0, 64, 64))
    source = put(ctx, encoded(image.quantize(4), "PNG"), "palette.png")
    assert source.mode == "P"
    out = decode(ctx, Downscale(max_edge=16).transform(source, ctx)).convert("RGB")
    colours = {out.getpixel((x, 8)) for x in range(16)}
    assert any(0 < r < 255 and 0 < b < 255 for r, _, b in colours), colours


def test_cmyk_and_16_bit_grey_are_resized_into_readable_modes(ctx):
    cmyk = decode(ctx, Downscale(max_edge=20, format="JPEG").transform(fixture(ctx, "cmyk-40x30.jpg"), ctx))
    assert cmyk.mode == "RGB" and cmyk.size == (20, 15)
    grey = decode(ctx, Downscale(max_edge=24).transform(fixture(ctx, "gray16-48x32.png"), ctx))
    assert grey.mode == "I;16" and grey.size == (24, 16)  # PNG keeps the 16 bits
    low, high = grey.getextrema()
    assert low < 2000 and high > 63000


def test_large_jpeg_decoded_at_reduced_scale_matches_a_full_decode(ctx):
    """The DCT-scaled decode is an optimisation: the result must look like a full-size Lanczos resize."""
    big = quadrants(2400, 1600)
    source = put(ctx, encoded(big, quality=95))
    out = decode(ctx, Downscale(max_edge=300).transform(source, ctx)).convert("RGB")
    reference = big.resize((300, 200), PILImage.Resampling.LANCZOS)
    worst = max(
        max(abs(a - b) for a, b in zip(out.getpixel((x, y)), reference.getpixel((x, y)), strict=True))
        for x in range(0, 300, 7)
        for y in range(0, 200, 7)
    )
    assert out.size == (300, 200) and worst <= 40


def test_downscale_is_deterministic(ctx):
    source = put(ctx, encoded(quadrants(640, 480)))
    assert Downscale(max_edge=100).transform(source, ctx) == Downscale(max_edge=100).transform(source, ctx)


def test_undecodable_bytes_raise_bad_image(ctx):
    source = Image({"objectid": ctx.objects.put_bytes(b"not an image"), "width": 900, "height": 900})
    with pytest.raises(BadImage):
        Downscale(max_edge=100).transform(source, ctx)


# --- Upscale -----------------------------------------------------------------------------------------------


def test_upscale_really_resizes_the_pixels(ctx):
    """The original's PIL path saved the unscaled image while reporting the new size."""
    source = put(ctx, encoded(quadrants(64, 48), "PNG"), "small.png")
    props = Upscale(min_edge=96).transform(source, ctx)
    out = decode(ctx, props)
    assert out.size == (props["width"], props["height"]) == (128, 96)
    assert (
        ctx.objects.path(props["objectid"]).stat().st_size > ctx.objects.path(source.objectid).stat().st_size
    )
    assert near(out.getpixel((20, 20)), (255, 0, 0)) and near(out.getpixel((100, 20)), (0, 255, 0))
    assert near(out.getpixel((20, 80)), (0, 0, 255)) and near(out.getpixel((100, 80)), (255, 255, 255))
    assert props["upscale_info"] == {
        "method": "PIL",
        "min_edge": 96,
        "original_width": 64,
        "original_height": 48,
        "scaled_width": 128,
        "scaled_height": 96,
    }


def test_upscale_uses_the_shorter_side_and_skips_large_enough_images(ctx):
    tall = put(ctx, encoded(quadrants(50, 400)))
    assert Upscale(min_edge=100, format="WEBP").transform(tall, ctx)["width"] == 100
    assert Upscale(min_edge=50).transform(tall, ctx) == {}


def test_upscale_refuses_an_output_over_the_pixel_limit(ctx):
    strip = put(ctx, encoded(PILImage.new("RGB", (2, 3000)), "PNG"), "strip.png")
    with pytest.raises(BadImage, match="over Pillow's limit"):
        Upscale(min_edge=20_000).transform(strip, ctx)


@pytest.mark.parametrize("method", ["SWINIR", "esrgan", UpscaleMethod.SWINIR])
def test_model_upscale_methods_build_the_model_node(method):
    from beprepared_dagster.nodes.upscale_model import ModelUpscale

    node = Upscale(method=method, min_edge=512)
    assert isinstance(node, ModelUpscale) and node.method == str(method).upper()
    assert node.params["min_edge"] == 512 and node.default_stage_name == "upscale"


def test_model_only_parameters_are_refused_with_pil():
    with pytest.raises(
        WorkflowError, match="^Upscale: model, tile only apply to method='SWINIR' or 'ESRGAN'"
    ):
        Upscale(model="x.pth", tile=256)


# --- parameters --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give exactly one of max_edge or min_edge"),
        ({"max_edge": 100, "min_edge": 50}, "give exactly one of max_edge or min_edge"),
        ({"max_edge": 0}, "max_edge must be a positive integer"),
        ({"min_edge": 10.5}, "min_edge must be a positive integer"),
        ({"max_edge": True}, "max_edge must be a positive integer"),
        ({"max_edge": 100, "format": "heic"}, "format 'heic' is not one of JPEG, PNG"),
        ({"max_edge": 100, "quality": 0}, "quality must be an integer from 1 to 100"),
        ({"method": "bicubic", "max_edge": 100}, "method 'bicubic' is not one of PIL"),
        ({"method": 1024}, "method 1024 is not one of PIL"),
    ],
)
def test_bad_downscale_parameters_name_the_parameter(kwargs, message):
    with pytest.raises(WorkflowError, match=f"^Downscale: {message}"):
        Downscale(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_edge": None}, "min_edge is required"),
        ({"min_edge": -1}, "min_edge must be a positive integer"),
        ({"format": 5}, "format 5 is not one of"),
        ({"method": "lanczos"}, "method 'lanczos' is not one of PIL, SWINIR, ESRGAN"),
    ],
)
def test_bad_upscale_parameters_name_the_parameter(kwargs, message):
    with pytest.raises(WorkflowError, match=f"^Upscale: {message}"):
        Upscale(**kwargs)


def test_format_and_method_spellings_share_one_fingerprint():
    assert (
        Downscale("pil", max_edge=10, format="jpg").fingerprint
        == Downscale(max_edge=10, format="JPEG").fingerprint
    )
    assert Downscale(max_edge=10).fingerprint != Downscale(max_edge=11).fingerprint
    assert Upscale(format=".png").fingerprint == Upscale().fingerprint


@pytest.mark.slow
def test_saved_files_carry_the_extension_of_the_new_format(tmp_path, workspace_dir):
    """The original never updated `ext`, so Save wrote PNG bytes under a .jpg name."""
    make_images(tmp_path / "photos", 2, width=64, height=48)
    Workflow(
        "scaled", Load(tmp_path / "photos") >> Downscale(max_edge=32) >> Save, workspace=workspace_dir
    ).run()
    exported = sorted((workspace_dir / "output").glob("img_*"))
    images = [p for p in exported if p.suffix != ".json"]
    assert len(images) == 2 and all(p.suffix == ".png" for p in images)
    assert all(PILImage.open(p).size == (32, 24) and PILImage.open(p).format == "PNG" for p in images)
