"""Florence2Caption: the original's defaults, `task` as the enum or its name (one cache key for both), an
unknown task failing when the workflow loads with the accepted values, the backend arguments, and one
captioning run through the real runtime on a tiny random native checkpoint.

Does not cover a Dagster run of this node (the stage machinery is shared with nodes/test_vlm_caption.py), GPUs
or the real checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from beprepared_dagster import Florence2Caption, Florence2Task
from beprepared_dagster.errors import WorkflowError
from beprepared_dagster_tests.conftest import make_image
from beprepared_dagster_tests.nodes.model_runs import run_node


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))


def test_defaults_are_the_originals_on_the_native_checkpoint():
    node = Florence2Caption()
    assert node.task is Florence2Task.MORE_DETAILED_CAPTION
    assert node.model == "florence-community/Florence-2-large-ft"
    assert not node.trust_remote_code
    args = node.backend_args()
    assert args["task"] == "<MORE_DETAILED_CAPTION>" and "prompt" not in args
    assert args["max_new_tokens"] == 1024 and args["temperature"] == 0.0  # beam search, not sampling


@pytest.mark.parametrize("task", [Florence2Task.CAPTION, "CAPTION", "caption", "<CAPTION>"])
def test_the_task_is_the_enum_or_its_name_and_both_are_one_cache_key(task):
    node = Florence2Caption(task=task)
    assert node.backend_args()["task"] == "<CAPTION>"
    assert node.fingerprint == Florence2Caption(task=Florence2Task.CAPTION).fingerprint
    assert node.fingerprint != Florence2Caption().fingerprint


@pytest.mark.parametrize("task", ["OD", "<OCR>", 3, None])
def test_an_unknown_task_fails_when_the_workflow_loads_with_the_accepted_values(task):
    with pytest.raises(WorkflowError) as caught:
        Florence2Caption(task=task)
    message = str(caught.value)
    assert message.startswith(f"Florence2Caption: task={task!r} is not accepted")
    assert (
        "Florence2Task.CAPTION, Florence2Task.DETAILED_CAPTION, Florence2Task.MORE_DETAILED_CAPTION"
        in message
    )


def test_florence2_has_no_free_prompt():
    with pytest.raises(WorkflowError, match="unknown parameter 'prompt'"):
        Florence2Caption(prompt="Describe it.")


@pytest.mark.slow
def test_a_run_through_the_runtime_captions_every_image(tiny_florence2, tmp_path):
    files = [make_image(tmp_path / f"{i}.jpg", 48 + 16 * i, 40, seed=i) for i in range(3)]
    node = Florence2Caption(model=str(tiny_florence2), task="CAPTION", max_new_tokens=6, batch_size=2)
    outcomes = run_node(node, files)
    assert sorted(outcomes) == ["0.jpg", "1.jpg", "2.jpg"]
    for outcome in outcomes.values():
        assert outcome.kept and isinstance(outcome.set["caption"], str) and outcome.set["caption"]
        assert outcome.set["caption_model"] == str(tiny_florence2)
