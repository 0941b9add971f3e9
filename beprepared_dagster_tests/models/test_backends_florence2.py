"""The Florence-2 backend on a tiny random native checkpoint: a task token as the whole prompt, one caption per
image after `post_process_generation`, the original's 3-beam search when greedy, seeded sampling otherwise.

Asserts the plumbing, never the text (random weights write junk). Does not cover GPUs or the real checkpoints
(nor the `microsoft/` remote-code repositories, which the node does not load)."""

from __future__ import annotations

import pytest

from beprepared_dagster_tests.models.family_checks import assert_batched_and_seeded, load_backend, prepared

pytestmark = pytest.mark.slow
BACKEND = "beprepared_dagster.models.backends.florence2:Florence2Backend"


def florence(folder, **args):
    return load_backend(BACKEND, folder, task="<MORE_DETAILED_CAPTION>", **args)


def spy_generate(engine, monkeypatch) -> list[dict]:
    calls: list[dict] = []
    generate = engine.net.generate

    def recording(**kwargs):
        calls.append(kwargs)
        return generate(**kwargs)

    monkeypatch.setattr(engine.net, "generate", recording)
    return calls


def test_sampling_gives_one_caption_per_image_seeded_per_image(tiny_florence2, tmp_path):
    engine = florence(tiny_florence2)
    assert engine.prompt_text == "<MORE_DETAILED_CAPTION>"  # the task token alone: the processor expands it
    captions = assert_batched_and_seeded(engine, prepared(engine, tmp_path))
    assert not any(marker in c for c in captions for marker in ("</s>", "<s>", "<pad>"))  # post-processed


def test_greedy_decoding_is_the_originals_three_beams(tiny_florence2, tmp_path, monkeypatch):
    engine = florence(tiny_florence2, temperature=0.0)
    calls = spy_generate(engine, monkeypatch)
    batch = prepared(engine, tmp_path)
    first = engine.run(batch)
    assert len(first) == 3 and engine.run(batch) == first
    assert calls[0]["num_beams"] == 3 and "logits_processor" not in calls[0]


def test_sampling_does_not_use_beams(tiny_florence2, tmp_path, monkeypatch):
    engine = florence(tiny_florence2, temperature=0.7)
    calls = spy_generate(engine, monkeypatch)
    engine.run(prepared(engine, tmp_path))
    assert "num_beams" not in calls[0] and calls[0]["logits_processor"]
