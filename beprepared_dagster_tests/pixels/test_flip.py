"""Flip: the mirrored pixels (horizontal, vertical), `skip_if`, `mode="replace"`, and `mode="add"` through
Save, SaveKohya and SaveImageFolder in one headless run: the `<stem>_flip<ext>` file with the same caption,
its sidecar saying what it derives from, an unchanged re-run rewriting nothing, and replace ↔ add switching
without leftovers. A pixel node after Flip(mode="add") makes the export fail naming the image.

Not covered here: lossless JPEG flips (mirrored JPEGs are re-encoded at `quality`), the Dagster UI.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image as PILImage
from PIL import ImageChops

from beprepared_dagster import (
    ConvertFormat,
    Flip,
    Load,
    Save,
    SaveImageFolder,
    SaveKohya,
    SetCaption,
    Workflow,
)
from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.export.entries import AUGMENTATIONS
from beprepared_dagster.nodes.base import NodeContext
from beprepared_dagster.store.objects import ObjectStore
from beprepared_dagster_tests.conftest import make_image
from beprepared_dagster_tests.export.rows import snapshot
from beprepared_dagster_tests.pixels.runs import LOG, stored_image


def halves(width: int = 40, height: int = 20, fmt: str = "PNG") -> bytes:
    """Left half red, right half blue (top-left pixel green), so a mirror is unmistakable."""
    image = PILImage.new("RGB", (width, height), (255, 0, 0))
    image.paste((0, 0, 255), (width // 2, 0, width, height))
    image.putpixel((0, 0), (0, 255, 0))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def mean_difference(a: Path, b: Path, mirror: bool) -> float:
    first, second = PILImage.open(a).convert("L"), PILImage.open(b).convert("L")
    if mirror:
        second = second.transpose(PILImage.Transpose.FLIP_LEFT_RIGHT)
    histogram = ImageChops.difference(first, second).histogram()
    return sum(i * n for i, n in enumerate(histogram)) / (first.width * first.height)


@pytest.fixture
def ctx(tmp_path: Path) -> NodeContext:
    return NodeContext(objects=ObjectStore(tmp_path / "objects"), log=LOG)


def picture(ctx: NodeContext, object_id: str) -> PILImage.Image:
    return PILImage.open(io.BytesIO(ctx.objects.read(object_id))).convert("RGB")


def test_replace_mirrors_the_pixels_and_keeps_the_format(ctx, tmp_path):
    path = tmp_path / "halves.png"
    path.write_bytes(halves())
    image = stored_image(ctx.objects, path)
    out = Flip(mode="replace").transform(image, ctx)
    assert out["objectid"] != image["objectid"] and out["format"] == "PNG" and out["flipped"] == "horizontal"
    mirrored = picture(ctx, out["objectid"])
    assert mirrored.getpixel((39, 0)) == (0, 255, 0) and mirrored.getpixel((0, 10)) == (0, 0, 255)
    vertical = picture(ctx, Flip("vertical", mode="replace").transform(image, ctx)["objectid"])
    assert vertical.getpixel((0, 19)) == (0, 255, 0) and vertical.getpixel((0, 0)) == (255, 0, 0)


def test_add_keeps_the_image_and_lists_the_mirrored_copy(ctx, tmp_path):
    path = tmp_path / "halves.png"
    path.write_bytes(halves())
    image = stored_image(ctx.objects, path)
    out = Flip().transform(image, ctx)
    assert "objectid" not in out and out["flipped"] is False
    [extra] = out[AUGMENTATIONS]
    assert extra["suffix"] == "_flip" and extra["source"] == image["objectid"] and extra["ext"] == ".png"
    assert picture(ctx, extra["objectid"]).getpixel((39, 0)) == (0, 255, 0)


def test_skip_if_leaves_the_image_alone(ctx, tmp_path):
    path = tmp_path / "halves.png"
    path.write_bytes(halves())
    image = stored_image(ctx.objects, path).with_props(tags=["text"])
    for mode in ("add", "replace"):
        out = Flip(mode=mode, skip_if=lambda im: "text" in im.get("tags", [])).transform(image, ctx)
        assert out == {"flipped": False, AUGMENTATIONS: None}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"direction": "diagonal"}, "direction='diagonal' is not accepted; use 'horizontal' or 'vertical'"),
        ({"mode": "both"}, "mode='both' is not accepted; use 'add' or 'replace'"),
        ({"skip_if": "text"}, "skip_if must be a function"),
    ],
)
def test_bad_parameters_fail_at_load_time(kwargs, message):
    with pytest.raises(WorkflowError, match=message):
        Flip(**kwargs)


def run_exports(root: Path, workspace: Path, mode: str) -> dict[str, Path]:
    folders = {name: root / name for name in ("save", "kohya", "imagefolder")}
    stage = Load(root / "photos") >> SetCaption("a photo of a dog") >> Flip(mode=mode)
    stage >> Save(dir=str(folders["save"]))
    stage >> SaveKohya(dir=str(folders["kohya"]), repeats=2)
    stage >> SaveImageFolder(dir=str(folders["imagefolder"]))
    Workflow("flips", stage, workspace=workspace).run()
    return folders


@pytest.mark.slow
def test_flip_add_reaches_every_exporter_and_reruns_and_switches_cleanly(tmp_path, workspace_dir):
    for i in range(2):
        make_image(tmp_path / "photos" / f"dog{i}.jpg", 48, 32, seed=i + 1)  # seed 0 is symmetric
    folders = run_exports(tmp_path, workspace_dir, "add")

    saved = sorted(p.name for p in folders["save"].glob("*.jpg"))
    assert len(saved) == 4 and sum(name.endswith("_flip.jpg") for name in saved) == 2
    for flip in folders["save"].glob("*_flip.jpg"):
        original = flip.with_name(flip.name.replace("_flip.jpg", ".jpg"))
        assert flip.with_suffix(".txt").read_text() == "a photo of a dog"
        sidecar = json.loads(flip.with_suffix(".json").read_text())
        assert sidecar["derived_from"] == original.name and sidecar["augmentation"] == "flip_horizontal"
        assert AUGMENTATIONS not in json.loads(original.with_suffix(".json").read_text())
        mirrored, unmirrored = (mean_difference(original, flip, mirror=m) for m in (True, False))
        assert mirrored < unmirrored / 3
    kohya = sorted(p.name for p in (folders["kohya"] / "2_img").glob("*.jpg"))
    assert kohya == saved and all(
        (folders["kohya"] / "2_img" / n).with_suffix(".txt").exists() for n in kohya
    )
    lines = [json.loads(line) for line in (folders["imagefolder"] / "train" / "metadata.jsonl").open()]
    assert sorted(line["file_name"] for line in lines) == saved
    assert {line["text"] for line in lines} == {"a photo of a dog"}

    before = {name: snapshot(folder) for name, folder in folders.items()}
    run_exports(tmp_path, workspace_dir, "add")
    assert {name: snapshot(folder) for name, folder in folders.items()} == before  # rewrites nothing

    run_exports(tmp_path, workspace_dir, "replace")
    for folder in folders.values():
        names = [p.name for p in folder.rglob("*.jpg")]
        assert len(names) == 2 and not any("_flip" in n for n in names)
    run_exports(tmp_path, workspace_dir, "add")
    assert {name: snapshot(folder) for name, folder in folders.items()}.keys() == before.keys()
    assert sorted(p.name for p in folders["save"].glob("*.jpg")) == saved


@pytest.mark.slow
def test_a_pixel_node_after_flip_add_fails_the_export_naming_the_image(tmp_path, workspace_dir):
    make_image(tmp_path / "photos" / "dog.jpg", 48, 32, seed=3)
    stage = Load(tmp_path / "photos") >> Flip() >> ConvertFormat("PNG") >> Save(dir=str(tmp_path / "out"))
    with pytest.raises(Exception, match=r"dog\.jpg: its flip_horizontal copy was made from other pixels"):
        Workflow("stale", stage, workspace=workspace_dir).run()
