"""The workflows under examples/: each file loads (its graph is built and validated, with the stages the docs
describe), and the ones whose nodes need no model, network or GPU run on the bundled demo images from start
to export. Manual tagging runs too, with the labels a person would give appended to the label journal.

Not covered: examples that need a model download, an API key or a GPU load but are not run."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from beprepared_dagster.store.labels import LabelJournal
from beprepared_dagster.workflow import Workflow, load_file
from beprepared_dagster_tests.docs.helpers import EXAMPLES, ROOT

DEMO = ROOT / "beprepared_dagster" / "demo" / "images"

# The stages each example's docs promise, in order.
STAGES = {
    "01_trigger_word.py": ["load", "filter_by_size", "convert_format", "exact_dedupe", "set_caption", "save"],
    "02_joycaption.py": ["load", "filter_by_size", "convert_format", "joy_caption_beta_one", "save"],
    "03_fuzzy_dedupe.py": ["load", "fuzzy_dedupe", "save"],
    "04_top_aesthetic.py": ["load", "aesthetic_score", "sorted", "take", "save"],
    "05_drop_nsfw.py": ["load", "nude_net", "filter", "save"],
    "06_filter_then_gpt4o.py": [
        "load",
        "filter_by_size",
        "convert_format",
        "human_filter",
        "gpt4o_caption",
        "save",
    ],
    "07_manual_tagging.py": [
        "load",
        "filter_by_size",
        "convert_format",
        "human_filter",
        "human_tag",
        "set_caption",
        "save",
    ],
    "08_sfw_nsfw_split.py": [
        "load",
        "filter_by_size",
        "convert_format",
        "nude_net",
        "filter",
        "joy_caption_beta_one",
        "filter_2",
        "gpt4o_caption",
        "concat",
        "save",
    ],
    "09_multi_vlm_fusion.py": [
        "load",
        "joy_caption_beta_one",
        "gpt4o_caption",
        "x_gen_mm_caption",
        "qwen_vl_caption",
        "llama_caption",
        "llm_caption_transform",
        "save",
    ],
}


def test_the_nine_examples_are_there():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(STAGES)


@pytest.fixture
def photos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the demo images as PHOTOS, and a fresh workspace as BEPREPARED_WORKSPACE."""
    folder = tmp_path / "photos"
    shutil.copytree(DEMO, folder, ignore=shutil.ignore_patterns("*.md"))
    monkeypatch.setenv("PHOTOS", str(folder))
    monkeypatch.setenv("BEPREPARED_WORKSPACE", str(tmp_path / "workspace"))
    return folder


def load_example(name: str) -> Workflow:
    (workflow,) = load_file(EXAMPLES / name)
    return workflow


@pytest.mark.parametrize("name", sorted(STAGES))
def test_example_loads_with_its_stages(name, photos):
    workflow = load_example(name)
    assert [stage.name for stage in workflow.stages] == STAGES[name]
    load = workflow.stages[0].node
    assert Path(load.params["dir"]) == photos  # PHOTOS is honoured


def exported(workspace: Path) -> dict[str, str]:
    """Caption text by exported image stem."""
    output = workspace / "output"
    return {p.stem: p.read_text() for p in output.glob("*.txt")}


@pytest.mark.slow
def test_trigger_word_example_runs_on_the_demo_images(photos, tmp_path):
    summary = load_example("01_trigger_word.py").run(wait=False)
    assert summary.saved
    captions = exported(tmp_path / "workspace")
    # 8 demo files: aqua-copy is aqua's byte-identical copy (one image); storm-tiny (400x250) and
    # elephants-small-variant (640x360) are below 512 px on their shorter side.
    assert len(captions) == 5 and set(captions.values()) == {"ohwx person"}
    assert not any(stem.startswith(("storm", "elephants")) for stem in captions)
    images = [p for p in (tmp_path / "workspace" / "output").iterdir() if p.suffix == ".jpg"]
    assert len(images) == 5  # PNGs converted to JPEG


@pytest.mark.slow
def test_fuzzy_dedupe_example_drops_a_near_duplicate(photos, tmp_path):
    from PIL import Image

    with Image.open(photos / "dune.jpg") as dune:  # a smaller, re-encoded copy: a near-duplicate
        dune.resize((512, 320)).save(photos / "dune-small.jpg", quality=80)
    summary = load_example("03_fuzzy_dedupe.py").run(wait=False)
    assert summary.saved
    output = tmp_path / "workspace" / "output"
    stems = {p.name.split(".")[0] for p in output.iterdir() if p.suffix in (".jpg", ".png", ".webp")}
    assert "dune" in stems and "dune-small" not in stems  # the larger copy stays
    assert len(stems & {"aqua", "aqua-copy"}) == 1  # byte-identical files are one image
    assert stems - {"dune", "aqua", "aqua-copy"} == {
        "calla",
        "goldfish",
        "the-mouse",
        "storm-tiny",
        "elephants-small-variant",
    }


def image_id(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_manual_tagging_example_exports_the_tags_a_person_gave(photos, tmp_path):
    journal = LabelJournal(tmp_path / "workspace" / "labels.sqlite")
    dune, calla = image_id(photos / "dune.jpg"), image_id(photos / "calla.png")
    small = ("storm-tiny.webp", "elephants-small-variant.jpg")  # FilterBySize drops them before any person
    keep = [p for p in photos.iterdir() if p.name not in ("dune.jpg", *small)]
    entries = [("default", "filter", image_id(p), {"keep": True}) for p in keep]
    entries.append(("default", "filter", dune, {"keep": False}))
    entries += [("default", "tag", image_id(p), {"tags": [], "rejected": False, "version": 1}) for p in keep]
    entries.append(("default", "tag", calla, {"tags": ["poodle"], "rejected": False, "version": 1}))
    journal.append_many(entries)
    summary = load_example("07_manual_tagging.py").run(wait=False)
    assert summary.saved and not summary.waiting
    captions = exported(tmp_path / "workspace")
    assert not any(stem.startswith("dune") for stem in captions)  # rejected by the person
    calla_caption = next(text for stem, text in captions.items() if stem.startswith("calla"))
    assert calla_caption == "poodle, a photo of a dog"
    assert "a photo of a dog" in captions.values()
