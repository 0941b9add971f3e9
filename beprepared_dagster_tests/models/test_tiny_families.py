"""The tiny Idefics3 and PaliGemma checkpoints the generic `VLMCaption` is tested on: each loads offline with
AutoProcessor + AutoModelForImageTextToText and writes one caption per image (Idefics3 through the generic
backend; PaliGemma, which has no chat template, from a plain "caption en" prompt).

Asserts the plumbing, never the text (random weights write junk)."""

from __future__ import annotations

import pytest

from beprepared_dagster_tests.models.family_checks import SIZES, load_backend, prepared

pytestmark = pytest.mark.slow


def test_idefics3_captions_through_the_generic_backend(tiny_idefics3, tmp_path):
    engine = load_backend("beprepared_dagster.models.backends.vlm:VLMBackend", tiny_idefics3)
    captions = engine.run(prepared(engine, tmp_path))
    assert len(captions) == len(SIZES) and all(isinstance(c, str) for c in captions)


def test_paligemma_captions_from_a_plain_prompt(tiny_paligemma):
    import transformers
    from PIL import Image

    processor = transformers.AutoProcessor.from_pretrained(tiny_paligemma)
    model = transformers.AutoModelForImageTextToText.from_pretrained(tiny_paligemma)
    images = [Image.new("RGB", size, "red") for size in SIZES]
    inputs = processor(images=images, text=["caption en"] * len(images), return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert len(processor.batch_decode(output[:, inputs["input_ids"].shape[1] :])) == len(images)
