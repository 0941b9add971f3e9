"""The Gemma 3 backend on a tiny random checkpoint: real batches (one image list per prompt, which the generic
backend's flat list breaks), one caption per image, seeded per image, the repetition penalty reaching
`generate`.

Asserts the plumbing, never the text (random weights write junk). Does not cover GPUs, quantization or the real
checkpoints."""

from __future__ import annotations

import pytest

from beprepared_dagster_tests.models.family_checks import assert_batched_and_seeded, load_backend, prepared

pytestmark = pytest.mark.slow
BACKEND = "beprepared_dagster.models.backends.gemma3:Gemma3Backend"


def test_a_batch_of_three_gives_one_caption_each_seeded_per_image(tiny_gemma3, tmp_path):
    engine = load_backend(BACKEND, tiny_gemma3, repetition_penalty=1.1)
    assert_batched_and_seeded(engine, prepared(engine, tmp_path))


@pytest.mark.parametrize(("penalty", "expected"), [(1.3, 1.3), (1.0, None)])
def test_the_repetition_penalty_reaches_generate(tiny_gemma3, tmp_path, monkeypatch, penalty, expected):
    engine = load_backend(BACKEND, tiny_gemma3, repetition_penalty=penalty)
    seen: list[dict] = []
    generate = engine.net.generate
    monkeypatch.setattr(engine.net, "generate", lambda **kw: seen.append(kw) or generate(**kw))
    engine.run(prepared(engine, tmp_path))
    assert seen[0].get("repetition_penalty") == expected
