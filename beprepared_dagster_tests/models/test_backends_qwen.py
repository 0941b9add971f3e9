"""The Qwen-VL backend on tiny random Qwen2-VL and Qwen2.5-VL checkpoints, without torchvision (so without
transformers' Qwen processor): one caption per image, seeded per image, one `<|image_pad|>` per merged patch,
the pixel budget, the chat template from the tokenizer, `chat_template.json` or the built-in ChatML, and a
folder that is not a Qwen-VL checkpoint.

Asserts the plumbing, never the text (random weights write junk). Does not cover Qwen3-VL (same image path,
patch 16), GPUs or the real checkpoints."""

from __future__ import annotations

import json
import shutil

import pytest

from beprepared_dagster.errors import BeprepareError
from beprepared_dagster.models.api import WorkItem
from beprepared_dagster_tests.models.family_checks import assert_batched_and_seeded, load_backend, prepared

pytestmark = pytest.mark.slow
BACKEND = "beprepared_dagster.models.backends.qwen:QwenBackend"
BUDGET = 28 * 28 * 8


@pytest.mark.parametrize("fixture", ["tiny_qwen2vl", "tiny_qwen25vl"])
def test_one_caption_per_image_seeded_per_image(fixture, request, tmp_path):
    engine = load_backend(BACKEND, request.getfixturevalue(fixture), max_pixels=BUDGET)
    assert_batched_and_seeded(engine, prepared(engine, tmp_path))


def test_every_image_gets_one_pad_token_per_merged_patch(tiny_qwen2vl, tmp_path):
    engine = load_backend(BACKEND, tiny_qwen2vl, max_pixels=BUDGET)
    inputs = engine.encode([image for image, _ in prepared(engine, tmp_path)])
    pad = engine.processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    per_row = (inputs["input_ids"] == pad).sum(dim=1).tolist()
    assert per_row == [int(grid.prod()) // 4 for grid in inputs["image_grid_thw"]]
    assert len(set(per_row)) > 1  # the sizes differ, and so do the token counts


def test_the_pixel_budget_caps_large_images_and_keeps_their_shape(tiny_qwen2vl):
    from PIL import Image

    engine = load_backend(BACKEND, tiny_qwen2vl, max_pixels=BUDGET)
    image, _ = engine.prepare(Image.new("RGB", (2000, 500)), WorkItem(0, "panorama.png", {}))
    assert image.width * image.height <= BUDGET and image.width / image.height == pytest.approx(4, rel=0.05)
    grid = engine.encode([image])["image_grid_thw"][0]
    assert int(grid.prod()) * 14 * 14 <= BUDGET  # the processor keeps it within the budget too
    small = Image.new("RGB", (60, 40))
    assert engine.prepare(small, WorkItem(1, "small.png", {}))[0].size == (60, 40)  # never enlarged here


def test_the_prompt_uses_the_tokenizer_template_else_chatml(tiny_qwen2vl, tiny_qwen25vl):
    with_template = load_backend(BACKEND, tiny_qwen2vl, prompt="Say what you see.")
    without = load_backend(BACKEND, tiny_qwen25vl, prompt="Say what you see.")
    expected = (
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Say what you see.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert with_template.prompt_text == without.prompt_text == expected


def test_a_processor_chat_template_json_is_used(tiny_qwen25vl, tmp_path):
    folder = tmp_path / "qwen"
    shutil.copytree(tiny_qwen25vl, folder)
    template = "{% for m in messages %}[{{ m['role'] }}]{% endfor %}<|image_pad|>{{ 'GO' }}"
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": template}))
    assert load_backend(BACKEND, folder).prompt_text == "[user]<|image_pad|>GO"


def test_a_folder_of_another_family_fails_naming_it(tiny_florence2):
    with pytest.raises(BeprepareError, match=r"could not be loaded as a .*Qwen-VL image processor"):
        load_backend(BACKEND, tiny_florence2)
