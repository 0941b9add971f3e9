"""Unit tests of Map, Apply, Info, Passthrough, Sleep and Fail, and one headless run proving that Fail fails the
run with its message (the executor does not isolate StageFailed per image).

Not covered here: that Info/Apply rerun only for images whose properties changed (the executor's cache).
"""

from __future__ import annotations

import logging

import pytest

from beprepared_dagster import Apply, Fail, Info, Load, Map, Passthrough, SetCaption, Sleep, Workflow
from beprepared_dagster.errors import RunFailed, StageFailed, WorkflowError
from beprepared_dagster.nodes import Image, NodeContext
from beprepared_dagster_tests.conftest import make_images

CTX = NodeContext(objects=None, log=logging.getLogger("beprepared.test"))  # type: ignore[arg-type]
IMAGE = Image(
    {"objectid": "0" * 64, "original_path": "/p/dog.jpg", "width": 640, "caption": "a dog", "_hidden": 1}
)


def test_map_sets_the_properties_the_function_changed():
    node = Map(lambda image: image.with_props(caption=image.caption.upper(), score=0.5))
    assert node.compute(IMAGE) == {"caption": "A DOG", "score": 0.5}
    assert Map(lambda image: {"width": 640, "tag": "x"}).compute(IMAGE) == {"tag": "x"}


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (lambda image: None, "Map's function returned None; return the image"),
        (lambda image: "text", "Map's function returned str, not an image or a dict"),
        (lambda image: image.with_props(when={1, 2}), "Map: property 'when' is not a JSON value"),
        (lambda image: image.with_props(x=float("nan")), "Map: property 'x' is not a JSON value"),
    ],
)
def test_map_explains_a_bad_result(func, message):
    with pytest.raises(TypeError, match=f"^{message}"):
        Map(func).compute(IMAGE)


def test_apply_calls_the_function_and_changes_nothing():
    seen = []
    assert Apply(lambda image: seen.append(image.caption)).compute(IMAGE) == {}
    assert seen == ["a dog"]


def test_info_logs_public_properties_and_elides_long_lists(caplog):
    image = IMAGE.with_props(clip=list(range(768)))
    with caplog.at_level(logging.INFO, logger="beprepared.test"):
        outcomes = Info().process([image], CTX)
    assert [o.kept for o in outcomes] == [True] and outcomes[0].set == {}
    text = caplog.text
    assert "/p/dog.jpg:" in text and "caption: 'a dog'" in text and "width: 640" in text
    assert "_hidden" not in text
    assert "… 718 more …" in text and "767]" in text and " 400," not in text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="beprepared.test"):
        Info(include_hidden_properties=True).process([image], CTX)
    assert "_hidden: 1" in caplog.text


def test_passthrough_keeps_everything_unchanged():
    assert [(o.kept, o.set) for o in Passthrough().process([IMAGE, IMAGE], CTX)] == [(True, {}), (True, {})]
    assert Passthrough.reads == ()


def test_sleep_waits_once_per_batch_and_not_for_nothing(monkeypatch):
    waits = []
    monkeypatch.setattr("beprepared_dagster.nodes.utils.time.sleep", waits.append)
    assert all(o.kept for o in Sleep(1.5).process([IMAGE] * 3, CTX))
    Sleep(1.5).process([], CTX)
    assert waits == [1.5]


def test_fail_raises_stage_failed_with_its_message():
    with pytest.raises(StageFailed, match="^Fail: stop before captioning$"):
        Fail("stop before captioning").process([IMAGE], CTX)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Map("upper"), "Map: func must be callable"),
        (lambda: Apply(None), "Apply: func must be callable"),
        (
            lambda: Info(include_hidden_properties="yes"),
            "Info: include_hidden_properties must be True or False",
        ),
        (lambda: Sleep(-1), "Sleep: seconds must be a number from 0 to 86400"),
        (lambda: Sleep("5"), "Sleep: seconds must be a number from 0 to 86400"),
        (lambda: Fail(42), "Fail: message must be a string"),
    ],
)
def test_bad_parameters_name_the_parameter(build, message):
    with pytest.raises(WorkflowError) as info:
        build()
    assert str(info.value).startswith(message)


def test_function_edits_change_the_fingerprint():
    assert (
        Map(lambda image: image.with_props(a=1)).fingerprint
        != Map(lambda image: image.with_props(a=2)).fingerprint
    )


@pytest.mark.slow
def test_fail_fails_a_headless_run_with_its_message(tmp_path, workspace_dir):
    make_images(tmp_path / "photos", 2)
    workflow = Workflow(
        "failing",
        Load(tmp_path / "photos") >> Passthrough >> Fail("not ready yet") >> SetCaption("x"),
        workspace=workspace_dir,
    )
    with pytest.raises(RunFailed, match="not ready yet"):
        workflow.run()
