"""Unit tests of AddTags, RemoveTags and RewriteTags (`compute` on plain images), including the original's
broken cases as regressions, and one headless run proving tags reach Save's JSON sidecars.

Not covered here: HumanTag's labeling flow (labeling tests); only its output list is combined with AddTags.
"""

from __future__ import annotations

import json

import pytest

from beprepared_dagster import AddTags, Load, RemoveTags, RewriteTags, Save, Workflow
from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.nodes import HumanTag, Image
from beprepared_dagster_tests.conftest import make_images


def tagged(tags) -> Image:
    return Image({"objectid": "0" * 64, "tags": tags})


def test_add_tags_to_an_untagged_image():
    assert AddTags(["dog", "outdoor"]).compute(Image({"objectid": "0" * 64})) == {"tags": ["dog", "outdoor"]}
    assert AddTags("dog").compute(Image({})) == {"tags": ["dog"]}


def test_add_tags_after_human_tag_extends_its_list():
    """The original called `.union` on HumanTag's list and raised AttributeError."""
    human = HumanTag(tags=["labrador", "poodle"])
    labelled = human.outcome(Image({}), {"tags": ["poodle"], "rejected": False, "version": 1})
    assert labelled.set == {"tags": ["poodle"]}
    result = AddTags(["dog", "poodle"]).compute(Image(labelled.set))
    assert result == {"tags": ["poodle", "dog"]}  # existing first, no repeat


def test_tags_are_a_json_list_not_a_set():
    """The original stored a set, so Save(sidecars=True) raised TypeError."""
    result = AddTags({"b", "a"}).compute(tagged(["c"]))
    assert isinstance(result["tags"], list)
    assert json.loads(json.dumps(result)) == {"tags": ["c", "a", "b"]}  # a set parameter is sorted: stable


def test_add_tags_removes_repeats_and_keeps_order():
    assert AddTags(["x", "y", "x"]).compute(tagged(["y", "z", "y"])) == {"tags": ["y", "z", "x"]}


def test_a_single_string_tag_property_counts_as_one_tag():
    assert AddTags("b").compute(tagged("a, c")) == {"tags": ["a, c", "b"]}


def test_unchanged_tags_set_no_property():
    assert AddTags("a").compute(tagged(["a"])) == {}
    assert RemoveTags("zzz").compute(tagged(["a"])) == {}


def test_remove_tags():
    assert RemoveTags(["b", "d"]).compute(tagged(["a", "b", "c", "d"])) == {"tags": ["a", "c"]}
    assert RemoveTags("a").compute(tagged(["a"])) == {"tags": []}


def test_remove_tags_on_an_untagged_image_does_nothing():
    """The original's no-tags branch called `.update` on a sentinel and raised."""
    assert RemoveTags("a").compute(Image({"objectid": "0" * 64})) == {}


def test_rewrite_tags_renames_in_place_and_merges_repeats():
    node = RewriteTags({"pup": "dog", "kitty": "cat"})
    assert node.compute(tagged(["pup", "grass", "kitty"])) == {"tags": ["dog", "grass", "cat"]}
    assert node.compute(tagged(["dog", "pup"])) == {"tags": ["dog"]}


def test_rewrite_tags_is_one_pass_not_transitive():
    assert RewriteTags({"a": "b", "b": "c"}).compute(tagged(["a", "b"])) == {"tags": ["b", "c"]}


def test_target_prop_matches_human_tags_target_prop():
    image = Image({"breed": ["poodle"], "tags": ["other"]})
    assert AddTags("dog", target_prop="breed").compute(image) == {"breed": ["poodle", "dog"]}
    assert RemoveTags("poodle", target_prop="breed").reads == ("breed",)


def test_a_non_list_tag_property_is_a_clear_error():
    with pytest.raises(TypeError, match="property 'tags' holds int 5, not a list of tags"):
        AddTags("a").compute(tagged(5))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: AddTags([]), "AddTags: tags must be a tag or a non-empty list of tags"),
        (lambda: AddTags(["ok", ""]), "AddTags: tags: every tag must be a non-empty string, got ''"),
        (lambda: RemoveTags(None), "RemoveTags: tags must be a tag"),
        (lambda: RemoveTags([3]), "RemoveTags: tags: every tag must be a non-empty string, got 3"),
        (lambda: RewriteTags({}), "RewriteTags: mapping must be a non-empty dict"),
        (lambda: RewriteTags({"a": ""}), "RewriteTags: mapping: tags must be non-empty strings"),
        (lambda: RewriteTags(["a"]), "RewriteTags: mapping must be a non-empty dict"),
        (lambda: AddTags("a", target_prop="_hidden"), "AddTags: target_prop must be a public property name"),
    ],
)
def test_bad_parameters_name_the_parameter(build, message):
    with pytest.raises(WorkflowError) as info:
        build()
    assert str(info.value).startswith(message)


def test_tag_spellings_share_one_fingerprint():
    assert AddTags(" dog ").fingerprint == AddTags(["dog"]).fingerprint == AddTags(("dog", "dog")).fingerprint
    assert AddTags("dog").fingerprint != AddTags("cat").fingerprint


@pytest.mark.slow
def test_tags_reach_save_sidecars_as_json_lists(tmp_path, workspace_dir):
    make_images(tmp_path / "photos", 3)
    Workflow(
        "tagged",
        Load(tmp_path / "photos")
        >> AddTags(["dog", "outdoor"])
        >> RewriteTags({"outdoor": "outside"})
        >> RemoveTags("dog")
        >> AddTags("ohwx")
        >> Save,
        workspace=workspace_dir,
    ).run()
    sidecars = [image.with_suffix(".json") for image in (workspace_dir / "output").glob("*.jpg")]
    assert len(sidecars) == 3
    assert all(json.loads(p.read_text())["tags"] == ["outside", "ohwx"] for p in sidecars)
