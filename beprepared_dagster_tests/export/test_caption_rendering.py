"""Caption rendering at export time (`export.captions`, `export.entries`) and the Save nodes' parameter checks.

Tags are stored raw and rendered per the booru/WD14 convention; several captions per image follow
`multi_caption`. Pure functions and hand-made rows: no files except in the last section.

Not covered here: how each layout writes the rendered captions (test_folder, test_kohya, test_imagefolder).
"""

from __future__ import annotations

import pytest

from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.export.captions import (
    CaptionSpec,
    apply_trigger,
    raw_tags,
    render_captions,
    render_tag,
    render_tags,
)
from beprepared_dagster.export.entries import plan_entries
from beprepared_dagster.nodes import Save, SaveImageFolder, SaveKohya
from beprepared_dagster.store.stages import KEPT, Row

OID = "a" * 64


# --- tags ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "spaces", "escape", "rendered"),
    [
        ("long_hair", True, False, "long hair"),
        ("long_hair", False, False, "long_hair"),
        ("^_^", True, False, "^_^"),  # three characters or fewer: kaomoji keep their underscore
        (">_<", True, False, ">_<"),
        ("a_b", True, False, "a_b"),
        ("hatsune_miku_(vocaloid)", True, False, "hatsune miku (vocaloid)"),  # kohya reads brackets literally
        ("hatsune_miku_(vocaloid)", True, True, r"hatsune miku \(vocaloid\)"),
        (r"already \(escaped\)", True, True, r"already \(escaped\)"),  # never double-escaped
        (r"half \(escaped)", True, True, r"half \(escaped\)"),
        ("  1girl ", True, False, "1girl"),
    ],
)
def test_render_tag(raw, spaces, escape, rendered):
    assert render_tag(raw, spaces, escape) == rendered


def test_rendering_leaves_the_stored_tags_alone():
    props = {"tags": ["hatsune_miku_(vocaloid)", "long_hair"]}
    render_captions(props, CaptionSpec(caption_prop=None, tags_prop="tags", escape_parens=True))
    assert props == {"tags": ["hatsune_miku_(vocaloid)", "long_hair"]}


def test_first_tags_move_to_the_front_in_their_order_others_keep_theirs():
    spec = CaptionSpec(first_tags=("1girl", "solo"))
    tags = ["smile", "solo", "long_hair", "1girl", "outdoors"]
    assert render_tags(tags, spec) == "1girl, solo, smile, long hair, outdoors"


@pytest.mark.parametrize(
    ("stored", "tags"),
    [
        (["b", "a", "b", " ", None], ["b", "a"]),
        ({"cat": 0.4, "dog": 0.9, "bird": "0.6"}, ["dog", "bird", "cat"]),  # WD14 scores: highest first
        ("red, green ,blue", ["red", "green", "blue"]),
        ([["cat", 0.9], ["dog", 0.3]], ["cat", "dog"]),
        (None, []),
        ([], []),
    ],
)
def test_raw_tags_accept_the_stored_shapes(stored, tags):
    assert raw_tags({"tags": stored}, "tags") == tags


# --- trigger and caption text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("a dog on a beach", "ohwx, a dog on a beach"),
        ("photo of [trigger] on a beach", "photo of ohwx on a beach"),  # ai-toolkit's placeholder
        ("ohwx, a dog", "ohwx, a dog"),
        ("ohwx dog on a beach", "ohwx dog on a beach"),
        ("", "ohwx"),
    ],
)
def test_trigger(text, rendered):
    assert apply_trigger(text, "ohwx") == rendered
    assert apply_trigger(text, None) == text


def test_tags_then_caption_then_trigger_first():
    props = {"caption": "a girl in a field", "tags": ["1girl", "long_hair"]}
    spec = CaptionSpec(tags_prop="tags", trigger="ohwx")
    assert render_captions(props, spec) == ["ohwx, 1girl, long hair, a girl in a field"]


def test_a_caption_is_one_line_and_a_list_is_several_captions():
    spec = CaptionSpec()
    assert render_captions({"caption": "two\nlines\r\n of  text"}, spec) == ["two lines of text"]
    assert render_captions({"caption": ["first", "second", "", "first"]}, spec) == ["first", "second"]
    assert render_captions({"caption": "  "}, spec) == []
    assert render_captions({"caption": "x"}, CaptionSpec(enabled=False)) == []
    assert render_captions({}, CaptionSpec(trigger="ohwx")) == ["ohwx"]  # no caption: the trigger alone


# --- several captions per image ------------------------------------------------------------------------


def row(seq: int = 0, oid: str = OID, image_id: str = "i" * 64, **props) -> Row:
    return Row(
        image_id, seq, KEPT, props={"objectid": oid, "original_path": "/p/cat.jpg", "ext": ".jpg", **props}
    )


def test_files_mode_makes_one_image_copy_per_caption():
    rows = [row(0, caption=["a cat", "a small cat"]), row(1, caption="a cat on a mat")]
    entries = plan_entries(rows, CaptionSpec(multi_caption="files"))
    assert [(e.stem, e.captions) for e in entries] == [
        (f"cat.jpg_{OID}", ["a cat"]),
        (f"cat.jpg_{OID}_1", ["a small cat"]),
        (f"cat.jpg_{OID}_2", ["a cat on a mat"]),
    ]
    assert {e.object_id for e in entries} == {OID}


def test_lines_mode_makes_one_image_with_every_caption():
    rows = [row(1, caption="a cat on a mat"), row(0, caption=["a cat", "a small cat"])]
    [entry] = plan_entries(rows, CaptionSpec(multi_caption="lines"))
    assert entry.stem == f"cat.jpg_{OID}"
    assert entry.captions == ["a cat", "a small cat", "a cat on a mat"]  # in seq order, duplicates once


def test_first_mode_keeps_the_first_caption():
    rows = [row(0, caption=["a cat", "a small cat"]), row(1, caption="a cat on a mat")]
    [entry] = plan_entries(rows, CaptionSpec(multi_caption="first"))
    assert entry.captions == ["a cat"]


def test_different_bytes_of_one_image_stay_separate_images_in_every_mode():
    """Concat of a converted and an unconverted branch: two object ids, two files whatever the mode."""
    rows = [row(0, oid="a" * 64, caption="x"), row(1, oid="b" * 64, caption="y")]
    for mode in ("files", "lines", "first"):
        entries = plan_entries(rows, CaptionSpec(multi_caption=mode))
        assert sorted(e.object_id for e in entries) == ["a" * 64, "b" * 64], mode


def test_an_image_without_captions_is_still_exported():
    [entry] = plan_entries([row(0)], CaptionSpec())
    assert entry.captions == [] and entry.image == f"cat.jpg_{OID}.jpg"


# --- parameter checks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Save(multi_caption="random"), "Save: multi_caption must be one of"),
        (lambda: Save(first_tags="1girl"), "Save: first_tags must be a list"),
        (lambda: Save(trigger=""), "Save: trigger must be"),
        (lambda: Save(trigger="a\nb"), "Save: trigger must be"),
        (lambda: Save(caption_prop="my caption"), "Save: caption_prop must be a property name"),
        (lambda: Save(tags_prop=3), "Save: tags_prop must be a property name"),
        (lambda: Save(dir=3), "Save: dir must be a folder path"),
        (lambda: SaveKohya(repeats=0), "SaveKohya: repeats must be a whole number"),
        (lambda: SaveKohya(repeats={"a": 2}), "SaveKohya: repeats per concept .* need concept_prop"),
        (lambda: SaveKohya(repeats={"a": 0}, concept_prop="c"), "SaveKohya: repeats must map"),
        (lambda: SaveKohya(resolution=[1024, 768, 1]), "SaveKohya: resolution must be"),
        (lambda: SaveKohya(class_tokens=""), "SaveKohya: class_tokens must be"),
        (lambda: SaveKohya(caption_ext=".toml"), "SaveKohya: caption_ext"),
        (lambda: SaveImageFolder(properties=["file_name"]), "SaveImageFolder: properties .* clash"),
        (lambda: SaveImageFolder(properties="width"), "SaveImageFolder: properties must be a list"),
        (lambda: SaveImageFolder(split="Train/x"), "SaveImageFolder: split must be"),
        (lambda: SaveImageFolder(caption_column="my text"), "SaveImageFolder: caption_column must be"),
    ],
)
def test_bad_parameters_fail_naming_the_node_and_parameter(make, message):
    with pytest.raises(WorkflowError, match=message):
        make()


def test_defaults_keep_the_original_behaviour():
    save = Save()
    assert (save.captions, save.sidecars, save.caption_ext, save.multi_caption) == (
        True,
        True,
        ".txt",
        "files",
    )
    assert (save.caption_prop, save.tags_prop, save.trigger, save.stats) == ("caption", None, None, True)
    assert SaveKohya().default_dir == "output_kohya" and SaveImageFolder().default_dir == "output_imagefolder"
