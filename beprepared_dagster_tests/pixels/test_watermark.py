"""EdgeWatermarkRemoval: the crop rule on hand-made boxes (which boxes count, the cut per edge, the one edge
cut, the max_crop_percent guard and its recorded reason), what the node does with a grounding result (crop
with the format kept, preview keeping the pixels, "replace", nothing found), the phrase-grounding parser, and
the full node through the runtime on a tiny random Florence-2.

Not covered here: real Florence-2 weights finding real watermarks (a GPU or download job).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image as PILImage

from beprepared_dagster import EdgeWatermarkRemoval
from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.models.api import ModelSpec, ResolvedModel
from beprepared_dagster.models.backends.grounding import parse_grounding
from beprepared_dagster.nodes.base import NodeContext
from beprepared_dagster.nodes.watermark import edge_crop
from beprepared_dagster.store.objects import ObjectStore
from beprepared_dagster_tests.conftest import make_image
from beprepared_dagster_tests.pixels.runs import LOG, run_pixel_node, stored_image

W, H = 1000, 800  # bands at 15 %: 150 px left/right, 120 px top/bottom; "near" at 5 %: 50 / 40 px


def test_a_bottom_right_logo_is_cut_at_the_edge_needing_the_smaller_cut():
    decision = edge_crop([[900, 740, 980, 790]], W, H, 0.15)
    assert decision.cuts == {"right": 100, "bottom": 60}
    assert decision.edge == "bottom" and decision.box == (0, 0, 1000, 740)


def test_each_edge_cuts_past_all_its_boxes_and_only_the_cheapest_edge_is_cut():
    boxes = [[10, 300, 60, 360], [5, 500, 120, 540], [400, 10, 600, 30]]  # two on the left, one on top
    decision = edge_crop(boxes, W, H, 0.15)
    assert decision.cuts == {"left": 120, "top": 30}
    assert decision.box == (0, 30, 1000, 800)  # the left-edge boxes stay, as in the original


def test_boxes_away_from_the_edges_or_outside_every_band_are_ignored():
    assert edge_crop([[400, 300, 600, 500]], W, H, 0.15).box is None  # the middle
    assert edge_crop([[100, 100, 140, 130]], W, H, 0.15).candidates == []  # in the band, not near an edge
    assert edge_crop([[0, 200, 400, 300]], W, H, 0.15).candidates == []  # near the left, wider than the band


def test_a_cut_over_max_crop_percent_is_not_made_and_the_reason_is_recorded():
    # Inside the top band, so a candidate, but it also reaches into the left band: a 300-px left cut.
    decision = edge_crop([[0, 0, 300, 100]], W, H, 0.15)
    assert decision.cuts == {"left": 300, "top": 100} and decision.box == (0, 100, 1000, 800)
    # Every edge would need more than its band: the original cut 400 px (40 %) off the left; we cut nothing.
    boxes = [[0, 300, 100, 400], [0, 0, 400, 100], [900, 0, 1000, 700], [600, 0, 1000, 100]]
    refused = edge_crop(boxes, W, H, 0.15)
    assert refused.cuts == {"left": 400, "top": 700, "right": 400, "bottom": 800}
    assert refused.box is None and refused.edge is None and len(refused.candidates) == 4
    assert refused.reason == "the left edge needs a cut of 400 px, over max_crop_percent=0.15 (150 px)"


def test_the_grounding_answer_is_parsed_into_relative_boxes():
    text = "</s><s>watermark<loc_900><loc_950><loc_999><loc_999>text<loc_0><loc_0><loc_99><loc_49></s><pad>"
    parsed = parse_grounding(text)
    assert parsed["labels"] == ["watermark", "text"]
    assert parsed["boxes"] == [[0.9005, 0.9505, 0.9995, 0.9995], [0.0005, 0.0005, 0.0995, 0.0495]]
    assert parse_grounding("no boxes at all") == {"boxes": [], "labels": []}


@pytest.fixture
def ctx(tmp_path: Path) -> NodeContext:
    return NodeContext(objects=ObjectStore(tmp_path / "objects"), log=LOG)


MODEL = ResolvedModel(ModelSpec("florence-community/Florence-2-large-ft"), Path("/nowhere"), "abc123")
LOGO = {"boxes": [[0.9, 0.92, 0.98, 0.99]], "labels": ["logo"]}  # bottom right of a 200×100 image


def finish(node, image, result, ctx):
    return node.finish(image, result, MODEL, ctx)


def test_the_crop_is_applied_and_the_format_kept(ctx, tmp_path):
    image = stored_image(ctx.objects, make_image(tmp_path / "logo.jpg", 200, 100, seed=3))
    outcome = finish(EdgeWatermarkRemoval(), image, LOGO, ctx)
    info = outcome.set["watermark_info"]
    assert info["did_modify"] and info["edge"] == "bottom" and info["crop"] == [0, 0, 200, 92]
    assert (outcome.set["width"], outcome.set["height"], outcome.set["format"]) == (200, 92, "JPEG")
    assert info["model"] == "florence-community/Florence-2-large-ft@abc123"


def test_a_preview_keeps_the_pixels_unless_asked_to_replace_them(ctx, tmp_path):
    image = stored_image(ctx.objects, make_image(tmp_path / "logo.jpg", 200, 100, seed=3))
    preview = finish(EdgeWatermarkRemoval(preview_crop=True), image, LOGO, ctx)
    assert "objectid" not in preview.set and preview.set["watermark_info"]["crop"] == [0, 0, 200, 92]
    drawn = PILImage.open(io.BytesIO(ctx.objects.read(preview.set["watermark_preview"]))).convert("RGB")
    assert drawn.size == (200, 100) and drawn.getpixel((180, 92)) == (255, 0, 0)  # the box, in red
    replaced = finish(EdgeWatermarkRemoval(preview_crop="replace"), image, LOGO, ctx)
    assert replaced.set["objectid"] == preview.set["watermark_preview"] and replaced.set["format"] == "PNG"
    assert EdgeWatermarkRemoval(preview_crop=True).fingerprint != EdgeWatermarkRemoval().fingerprint


def test_nothing_found_keeps_the_bytes(ctx, tmp_path):
    image = stored_image(ctx.objects, make_image(tmp_path / "clean.jpg", 200, 100, seed=4))
    outcome = finish(EdgeWatermarkRemoval(), image, {"boxes": [], "labels": []}, ctx)
    assert set(outcome.set) == {"watermark_info"} and not outcome.set["watermark_info"]["did_modify"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_crop_percent": 0.6}, "max_crop_percent must be between 0 and 0.5"),
        ({"preview_crop": "yes"}, "preview_crop must be False, True or 'replace'"),
    ],
)
def test_bad_parameters_fail_at_load_time(kwargs, message):
    with pytest.raises(WorkflowError, match=f"^EdgeWatermarkRemoval: {message}"):
        EdgeWatermarkRemoval(**kwargs)


@pytest.mark.slow
def test_the_full_node_runs_on_a_tiny_florence2(tiny_florence2, tmp_path):
    objects = ObjectStore(tmp_path / "objects")
    images = [
        stored_image(objects, make_image(tmp_path / f"{i}.jpg", 96 + 16 * i, 64, seed=i)) for i in range(2)
    ]
    node = EdgeWatermarkRemoval(model=str(tiny_florence2), max_new_tokens=24, batch_size=2)
    for image, outcome in zip(images, run_pixel_node(node, images, objects), strict=True):
        info = outcome.set["watermark_info"]
        assert outcome.kept and info["model"] == str(tiny_florence2)
        assert all(len(box) == 4 for box in info["boxes"]) and len(info["labels"]) == len(info["boxes"])
        assert info["did_modify"] == (
            "objectid" in outcome.set
        )  # random weights: whatever it found, consistently
        if not info["did_modify"]:
            assert outcome.set.keys() == {"watermark_info"} and image["objectid"]
