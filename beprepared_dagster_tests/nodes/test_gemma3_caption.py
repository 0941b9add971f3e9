"""Gemma3Caption: the original's defaults (model, prompt, sampling, repetition penalty), checked parameters,
and one captioning run through the real runtime on a tiny random Gemma 3 checkpoint, in real batches.

Does not cover a Dagster run of this node (the stage machinery is shared with nodes/test_vlm_caption.py, which
also covers failures recorded as `caption_error`, never as caption text), GPUs or the real (gated) checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from beprepared_dagster import Gemma3Caption
from beprepared_dagster.errors import WorkflowError
from beprepared_dagster_tests.conftest import make_image
from beprepared_dagster_tests.nodes.model_runs import run_node


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))


def test_defaults_are_the_originals():
    node = Gemma3Caption()
    assert node.model == "google/gemma-3-12b-it"
    assert node.full_prompt().startswith("Describe this image in detail, including the subject, composition")
    args = node.backend_args()
    assert (args["max_new_tokens"], args["temperature"], args["top_p"]) == (512, 0.5, 0.9)
    assert args["repetition_penalty"] == 1.1


def test_the_repetition_penalty_is_part_of_the_cache_key():
    assert Gemma3Caption(repetition_penalty=1.0).fingerprint != Gemma3Caption().fingerprint


@pytest.mark.parametrize("penalty", [0, -1.0, "high", True])
def test_a_bad_repetition_penalty_fails_when_the_workflow_loads(penalty):
    with pytest.raises(WorkflowError, match=r"^Gemma3Caption: repetition_penalty must be a number > 0"):
        Gemma3Caption(repetition_penalty=penalty)


@pytest.mark.slow
def test_a_run_through_the_runtime_captions_every_image(tiny_gemma3, tmp_path):
    files = [make_image(tmp_path / f"{i}.jpg", 48 + 40 * i, 40, seed=i) for i in range(3)]
    outcomes = run_node(Gemma3Caption(model=str(tiny_gemma3), max_new_tokens=6, batch_size=3), files)
    assert sorted(outcomes) == ["0.jpg", "1.jpg", "2.jpg"]
    for outcome in outcomes.values():
        assert outcome.kept and isinstance(outcome.set["caption"], str) and outcome.set["caption"]
        assert outcome.set["caption_model"] == str(tiny_gemma3)
