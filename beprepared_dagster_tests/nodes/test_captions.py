"""Unit tests of the caption and property setters: SetCaption, MapCaption and Set.

The nodes are called through `process` (what the executor calls) with hand-made `Image`s, and constructed
through the workflow metaclass (so parameter errors are `WorkflowError`).

Not covered here: how the executor turns a node's exception into an error row (executor tests), caching and
fingerprints of callables (workflow tests), and writing captions to disk (export/test_folder.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.nodes import Image, MapCaption, Outcome, Set, SetCaption


def image(**props) -> Image:
    return Image({"objectid": "a" * 64, "width": 640, "height": 480, **props})


def run(node, img: Image) -> Outcome:
    [outcome] = node.process([img], None)
    assert outcome.kept and outcome.reason is None  # these nodes never reject
    return outcome


# --- SetCaption ------------------------------------------------------------------------------------------


def test_set_caption_sets_the_same_caption_on_every_image():
    node = SetCaption("ohwx person")
    assert run(node, image()).set == {"caption": "ohwx person"}
    assert run(node, image(caption="old caption")).set == {"caption": "ohwx person"}


def test_set_caption_keeps_unicode_and_newlines_verbatim():
    assert run(SetCaption("café, 名前\nline two"), image()).set == {"caption": "café, 名前\nline two"}


def test_set_caption_depends_on_no_property():
    assert SetCaption("x").reads == ()


@pytest.mark.parametrize("bad", [None, 42, ["a"], b"bytes"])
def test_set_caption_requires_a_string(bad):
    with pytest.raises(WorkflowError, match="SetCaption: caption must be a string"):
        SetCaption(bad)


def test_set_caption_without_a_caption_is_an_error():
    with pytest.raises(WorkflowError, match="SetCaption"):
        SetCaption()


# --- MapCaption ------------------------------------------------------------------------------------------


def test_map_caption_rewrites_the_caption():
    node = MapCaption(lambda caption: f"ohwx, {caption}")
    assert run(node, image(caption="a dog")).set == {"caption": "ohwx, a dog"}


@pytest.mark.parametrize("props", [{}, {"caption": ""}, {"caption": None}])
def test_map_caption_skips_images_without_a_caption(props):
    calls = []

    def func(caption):
        calls.append(caption)
        return "should not be set"

    assert run(MapCaption(func), image(**props)).set == {}
    assert calls == []


@pytest.mark.parametrize("result", [None, 3, ["a"], b"bytes"])
def test_map_caption_non_string_result_is_an_error(result):
    node = MapCaption(lambda caption: result)
    with pytest.raises(TypeError, match=f"returned {type(result).__name__}, not a string"):
        run(node, image(caption="a dog"))


def test_map_caption_may_return_an_empty_string():
    assert run(MapCaption(lambda caption: ""), image(caption="a dog")).set == {"caption": ""}


def test_map_caption_errors_of_the_function_propagate():
    def func(caption):
        raise KeyError(caption)

    with pytest.raises(KeyError):
        run(MapCaption(func), image(caption="a dog"))


def test_map_caption_reads_only_the_caption():
    assert MapCaption(str.upper).reads == ("caption",)


def test_map_caption_requires_a_callable():
    with pytest.raises(WorkflowError, match="MapCaption: func must be callable"):
        MapCaption("upper")


def test_map_caption_batch_keeps_order():
    node = MapCaption(str.upper)
    outcomes = node.process([image(caption="a"), image(), image(caption="c")], None)
    assert [o.set for o in outcomes] == [{"caption": "A"}, {}, {"caption": "C"}]


# --- Set -------------------------------------------------------------------------------------------------


def test_set_constants():
    node = Set(source="web", score=0.5, tags=["a", "b"], meta={"k": None}, flag=False, nothing=None)
    assert run(node, image()).set == {
        "source": "web",
        "score": 0.5,
        "tags": ["a", "b"],
        "meta": {"k": None},
        "flag": False,
        "nothing": None,
    }
    # Constants depend on no property, so a property change never recomputes them.
    assert node.reads == ()


def test_set_callables_get_the_image():
    node = Set(score=lambda image: image.width / 1000, source="web")
    assert run(node, image()).set == {"score": 0.64, "source": "web"}
    assert run(node, image(width=2000)).set["score"] == 2.0
    # A callable may read anything, so every property is part of the cache key.
    assert node.reads is None


@pytest.mark.parametrize("bad", [object(), {1, 2}, b"bytes", Path("photo.jpg")])
def test_set_non_json_constant_is_an_error_naming_the_property(bad):
    with pytest.raises(WorkflowError) as info:
        Set(ok=1, weird=bad)
    message = str(info.value)
    assert message.startswith("Set:")
    assert "'weird'" in message and "JSON" in message


def test_set_callable_returning_non_json_is_an_error():
    node = Set(when=lambda image: object())
    with pytest.raises(TypeError, match="'when' computed a non-JSON value"):
        run(node, image())


def test_set_needs_at_least_one_property():
    with pytest.raises(WorkflowError, match="Set: give at least one property"):
        Set()


def test_set_overrides_existing_properties():
    assert run(Set(caption="new"), image(caption="old")).set == {"caption": "new"}
