"""Unit tests of CropToAspect through `transform` with a real object store: which ratio is chosen, that the
crop is centred, the properties set on every image, formats, and parameter errors.

Not covered here: the stage's cache key (executor tests).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from PIL import Image as PILImage

from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.nodes import CropToAspect, Image, NodeContext, imaging
from beprepared_dagster.nodes.crop import crop_box
from beprepared_dagster.store.objects import ObjectStore
from beprepared_dagster_tests.conftest import DATA


@pytest.fixture
def ctx(tmp_path: Path) -> NodeContext:
    return NodeContext(objects=ObjectStore(tmp_path / "objects"), log=logging.getLogger("test"))


def put(ctx: NodeContext, image: PILImage.Image, fmt: str = "PNG") -> Image:
    out = io.BytesIO()
    image.save(out, fmt)
    data = out.getvalue()
    return Image({"objectid": ctx.objects.put_bytes(data), **imaging.probe(data)})


def decode(ctx: NodeContext, props: dict) -> PILImage.Image:
    image = PILImage.open(io.BytesIO(ctx.objects.read(props["objectid"])))
    image.load()
    return image


def banded(width: int, height: int, band: int, vertical: bool = True) -> PILImage.Image:
    """Green, with red bands of `band` pixels on the left/right (or top/bottom) edges."""
    image = PILImage.new("RGB", (width, height), "lime")
    if vertical:
        image.paste("red", (0, 0, band, height))
        image.paste("red", (width - band, 0, width, height))
    else:
        image.paste("red", (0, 0, width, band))
        image.paste("red", (0, height - band, width, height))
    return image


def test_wide_image_is_cropped_to_a_centred_square(ctx):
    source = put(ctx, banded(640, 480, band=80))
    props = CropToAspect([1.0]).transform(source, ctx)
    out = decode(ctx, props).convert("RGB")
    assert out.size == (props["width"], props["height"]) == (480, 480)
    assert props["objectid"] != source.objectid and (props["format"], props["ext"]) == ("PNG", ".png")
    # Exactly the red bands are gone: every edge pixel is green.
    edge = [out.getpixel((x, y)) for x in (0, 479) for y in (0, 240, 479)]
    assert set(edge) == {(0, 255, 0)}
    assert props["crop_target_ratio"] == 1.0
    assert (props["crop_original_width"], props["crop_original_height"]) == (640, 480)


def test_tall_image_loses_top_and_bottom(ctx):
    props = CropToAspect([0.5, 1.0]).transform(put(ctx, banded(300, 400, band=50, vertical=False)), ctx)
    out = decode(ctx, props).convert("RGB")
    assert out.size == (300, 300) and out.getpixel((150, 0)) == (0, 255, 0)


def test_closest_ratio_is_measured_on_a_log_scale():
    """0.55 is nearer 0.25 than 1.0 by difference, but 1.0 is nearer by proportion (1.82x vs 2.2x)."""
    node = CropToAspect([0.25, 1.0])
    assert node.target_ratio(110, 200) == 1.0
    # 2:1 and 1:2 are equally far from 1:1, so neither side of a square is favoured.
    assert CropToAspect([0.5, 2.0]).target_ratio(100, 100) == 0.5
    assert CropToAspect([0.75, 1.0, 4 / 3]).target_ratio(1920, 1080) == 4 / 3


def test_image_already_at_its_ratio_keeps_its_bytes_but_is_labelled(ctx):
    source = put(ctx, banded(400, 300, band=10), "JPEG")
    props = CropToAspect([4 / 3, 1.0]).transform(source, ctx)
    assert "objectid" not in props
    assert props == {"crop_target_ratio": 4 / 3, "crop_original_width": 400, "crop_original_height": 300}


@pytest.mark.parametrize(
    ("fmt", "expected"), [("JPEG", "JPEG"), ("WEBP", "WEBP"), ("GIF", "PNG"), ("BMP", "PNG")]
)
def test_crop_keeps_the_source_format_where_it_can_and_updates_ext(ctx, fmt, expected):
    props = CropToAspect([1.0]).transform(put(ctx, banded(64, 48, band=8), fmt), ctx)
    out = decode(ctx, props)
    assert out.format == props["format"] == expected
    assert props["ext"] == imaging.FORMAT_EXTENSIONS[expected] and out.size == (48, 48)


def test_exif_rotated_photo_is_cropped_as_displayed(ctx):
    data = (DATA / "exif-rotated-60x40.jpg").read_bytes()  # displayed 40x60: red top, blue bottom
    source = Image({"objectid": ctx.objects.put_bytes(data), **imaging.probe(data)})
    props = CropToAspect([1.0]).transform(source, ctx)
    out = decode(ctx, props)
    assert out.size == (40, 40) and props["orientation"] == 1
    top, bottom = out.getpixel((20, 2)), out.getpixel((20, 37))
    assert top[0] > 200 and top[2] < 60 and bottom[2] > 200 and bottom[0] < 60


def test_crop_box_is_inside_the_image_and_has_the_ratio():
    for width, height in [(1001, 333), (333, 1001), (7, 3000), (1, 1), (4000, 4000)]:
        for ratio in (0.5, 0.75, 1.0, 16 / 9, 3.0):
            left, top, right, bottom = crop_box(width, height, ratio)
            assert 0 <= left < right <= width and 0 <= top < bottom <= height
            w, h = right - left, bottom - top
            assert w == width or h == height
            assert abs(w - h * ratio) <= 1 or abs(h - w / ratio) <= 1 or min(w, h) == 1


@pytest.mark.parametrize("bad", [[], [0], [-1.0], "1:1", [True], None, [float("inf")], [1.0, "2"]])
def test_bad_aspect_ratios_name_the_parameter(bad):
    with pytest.raises(WorkflowError, match="^CropToAspect: aspect_ratios must be"):
        CropToAspect(bad)


def test_ratios_are_normalized_for_the_fingerprint():
    node = CropToAspect([1, 0.75, 1.0])
    assert node.params["aspect_ratios"] == [0.75, 1.0]
    assert node.fingerprint == CropToAspect([0.75, 1.0]).fingerprint
    assert CropToAspect(1.0).params["aspect_ratios"] == [1.0]  # a single ratio is accepted too
