"""LlamaCaption: the original's defaults (model, prompt, sampling), checked parameters, and one captioning run
through the real runtime on a tiny random Mllama checkpoint.

Does not cover a Dagster run of this node (the stage machinery is shared with nodes/test_vlm_caption.py), GPUs
or the real (gated) checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from beprepared_dagster import LlamaCaption
from beprepared_dagster.errors import WorkflowError
from beprepared_dagster_tests.conftest import make_image
from beprepared_dagster_tests.nodes.model_runs import run_node


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))


def test_defaults_are_the_originals():
    node = LlamaCaption()
    assert node.model == "meta-llama/Llama-3.2-11B-Vision-Instruct"
    assert node.full_prompt() == "Write 2-3 sentences that describe this image"
    args = node.backend_args()
    assert (args["max_new_tokens"], args["temperature"]) == (300, 0.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quantize": "2bit"}, "quantize='2bit' is not accepted; use '4bit', '8bit' or None"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"prompt": 5}, "prompt must be a string"),
    ],
)
def test_bad_parameters_fail_when_the_workflow_loads(kwargs, message):
    with pytest.raises(WorkflowError, match=r"^LlamaCaption: " + message):
        LlamaCaption(**kwargs)


@pytest.mark.slow
def test_a_run_through_the_runtime_captions_every_image(tiny_mllama, tmp_path):
    files = [make_image(tmp_path / f"{i}.jpg", 48 + 40 * i, 40, seed=i) for i in range(3)]
    outcomes = run_node(LlamaCaption(model=str(tiny_mllama), max_new_tokens=6, batch_size=2), files)
    assert sorted(outcomes) == ["0.jpg", "1.jpg", "2.jpg"]
    for outcome in outcomes.values():
        assert outcome.kept and isinstance(outcome.set["caption"], str) and outcome.set["caption"]
        assert outcome.set["caption_model"] == str(tiny_mllama)
