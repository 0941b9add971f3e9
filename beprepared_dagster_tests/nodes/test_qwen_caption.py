"""QwenVLCaption: the original's defaults (model, prompt, sampling), the pixel budget as a checked parameter in
the cache key, a folder missing the image processor config named, and one captioning run through the real
runtime on tiny random Qwen2-VL and Qwen2.5-VL checkpoints (no torchvision needed).

Does not cover a Dagster run of this node (the stage machinery is shared with nodes/test_vlm_caption.py), GPUs,
Qwen3-VL or the real checkpoints."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from beprepared_dagster import QwenVLCaption
from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.models import loading
from beprepared_dagster_tests.conftest import make_image
from beprepared_dagster_tests.nodes.model_runs import run_node


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))


def test_defaults_are_the_originals():
    node = QwenVLCaption()
    assert node.model == "Qwen/Qwen2-VL-7B-Instruct"
    assert node.full_prompt().startswith("Write 4-6 sentences that describe this image.")
    args = node.backend_args()
    assert (args["max_new_tokens"], args["temperature"]) == (300, 0.5)
    assert args["max_pixels"] == 1024 * 768
    assert QwenVLCaption(instructions="No names.").full_prompt().endswith("assumptions.\n\nNo names.")


def test_the_pixel_budget_is_part_of_the_cache_key():
    assert QwenVLCaption(max_pixels=512 * 512).fingerprint != QwenVLCaption().fingerprint


@pytest.mark.parametrize("max_pixels", [100, 2.5, "big", True])
def test_a_bad_pixel_budget_fails_when_the_workflow_loads(max_pixels):
    with pytest.raises(
        WorkflowError, match=r"^QwenVLCaption: max_pixels must be an integer of at least 3136"
    ):
        QwenVLCaption(max_pixels=max_pixels)


def test_a_folder_without_the_image_processor_config_is_named(tiny_qwen2vl, tmp_path):
    folder = tmp_path / "qwen"
    shutil.copytree(tiny_qwen2vl, folder)
    (folder / "preprocessor_config.json").unlink()
    with pytest.raises(
        loading.ModelNotFound, match=r"not a Qwen-VL model folder: missing preprocessor_config"
    ):
        loading.resolve(QwenVLCaption(model=str(folder)).model_spec())


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["tiny_qwen2vl", "tiny_qwen25vl"])
def test_a_run_through_the_runtime_captions_every_image(fixture, request, tmp_path):
    folder = request.getfixturevalue(fixture)
    files = [make_image(tmp_path / f"{i}.jpg", 48 + 40 * i, 40, seed=i) for i in range(3)]
    node = QwenVLCaption(model=str(folder), max_new_tokens=6, max_pixels=28 * 28 * 8, batch_size=2)
    outcomes = run_node(node, files)
    assert sorted(outcomes) == ["0.jpg", "1.jpg", "2.jpg"]
    for outcome in outcomes.values():
        assert outcome.kept and isinstance(outcome.set["caption"], str) and outcome.set["caption"]
        assert outcome.set["caption_model"] == str(folder)
