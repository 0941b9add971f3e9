"""The Llama 3.2 Vision (Mllama) backend on a tiny random checkpoint: real batches (one image list per prompt,
tiles and cross-attention masks from the processor), one caption per image, seeded per image, and the prompt
ending with the assistant turn (the original rendered none and trimmed "assistant" off each caption).

Asserts the plumbing, never the text (random weights write junk). Does not cover GPUs, quantization or the real
(gated) checkpoint."""

from __future__ import annotations

import pytest

from beprepared_dagster_tests.models.family_checks import assert_batched_and_seeded, load_backend, prepared

pytestmark = pytest.mark.slow
BACKEND = "beprepared_dagster.models.backends.mllama:MllamaBackend"


def test_a_batch_of_three_gives_one_caption_each_seeded_per_image(tiny_mllama, tmp_path):
    engine = load_backend(BACKEND, tiny_mllama, prompt="Write 2-3 sentences that describe this image")
    assert engine.prompt_text.endswith("assistant:")  # the tiny template's generation prompt
    assert_batched_and_seeded(engine, prepared(engine, tmp_path))


def test_a_template_that_starts_with_bos_gets_no_second_one(tiny_mllama, tmp_path):
    import shutil

    from tokenizers.processors import TemplateProcessing
    from transformers import AutoProcessor

    folder = tmp_path / "mllama"
    shutil.copytree(tiny_mllama, folder)
    processor = AutoProcessor.from_pretrained(folder)
    tokenizer = processor.tokenizer  # like Llama 3's: adds BOS itself, and the template writes one too
    bos = tokenizer.bos_token_id
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", bos)]
    )
    processor.chat_template = "<s>" + processor.chat_template
    processor.save_pretrained(folder)
    engine = load_backend(BACKEND, folder)
    assert engine.prompt_text.startswith("<s>")
    inputs = engine.encode([image for image, _ in prepared(engine, tmp_path)])
    assert (inputs["input_ids"] == bos).sum(dim=1).tolist() == [1, 1, 1]
