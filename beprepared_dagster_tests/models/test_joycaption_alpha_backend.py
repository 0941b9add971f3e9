"""The JoyCaption Alpha backends on a tiny random checkpoint laid out like the original's download: one caption
per image, a batch of three equal to three single runs (seeded per image), reproducible, the image placed where
each model expects it, and the load errors a user sees (missing files, a .pt that holds more than tensors,
bases that do not fit the checkpoint).

Asserts the plumbing, never the text (random weights write junk). Does not cover GPUs, quantization or the real
checkpoints."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from beprepared_dagster.errors import BeprepareError
from beprepared_dagster.models.api import ModelSpec, ResolvedModel, WorkItem
from beprepared_dagster.models.backends.joycaption_alpha import (
    JoyCaptionAlphaOneBackend,
    JoyCaptionAlphaTwoBackend,
)
from beprepared_dagster_tests.conftest import make_image

pytestmark = pytest.mark.slow
PROMPT = "Write a long descriptive caption for this image in a formal tone."


def backend(cls, tiny, checkpoint: Path | None = None, **args):
    folder = checkpoint or tiny.checkpoint
    extras = {"vision_model": str(tiny.vision), "text_model": str(tiny.text)}
    args = {"prompt": PROMPT, "max_new_tokens": 6, "temperature": 1.0, "top_p": 0.9, **args}
    engine = cls(
        ResolvedModel(ModelSpec(str(folder)), folder), "cpu", "float32", None, extra_models=extras, **args
    )
    engine.load()
    return engine


@pytest.fixture
def batch(tmp_path):
    from PIL import Image

    paths = [make_image(tmp_path / f"{i}.jpg", 40 + 16 * i, 30, seed=i) for i in range(3)]
    return paths, [
        (Image.open(p).convert("RGB"), WorkItem(i, str(p), {"seed": 7 + i})) for i, p in enumerate(paths)
    ]


@pytest.mark.parametrize("cls", [JoyCaptionAlphaOneBackend, JoyCaptionAlphaTwoBackend])
def test_a_batch_of_three_gives_one_caption_each_equal_to_single_runs(cls, tiny_joycaption_alpha, batch):
    engine = backend(cls, tiny_joycaption_alpha)
    prepared = [engine.prepare(image, item) for image, item in batch[1]]
    together = engine.run(prepared)
    assert len(together) == 3 and all(isinstance(c, str) for c in together)
    assert [engine.run([p])[0] for p in prepared] == together  # seeded per image, whatever the batch
    assert engine.run(prepared) == together  # reproducible
    reseeded = [(p, WorkItem(i.index, i.path, {"seed": 1000})) for p, i in prepared]
    assert engine.run(reseeded) != together  # the seed is what decides


def test_alpha_one_sends_bos_image_prompt_and_end_of_turn(tiny_joycaption_alpha):
    engine = backend(JoyCaptionAlphaOneBackend, tiny_joycaption_alpha)
    tok = engine.tokenizer
    assert engine.prefix_ids.tolist() == [[tok.bos_token_id]]
    assert tok.decode(engine.suffix_ids[0]) == PROMPT + "<|eot_id|>"


def test_alpha_two_puts_the_image_just_before_the_user_prompt(tiny_joycaption_alpha):
    engine = backend(JoyCaptionAlphaTwoBackend, tiny_joycaption_alpha)
    before = engine.tokenizer.decode(engine.prefix_ids[0])
    after = engine.tokenizer.decode(engine.suffix_ids[0])
    assert before.startswith("<|begin_of_text|><|start_header_id|>system")
    assert "You are a helpful image captioner.<|eot_id|>" in before
    assert before.endswith("<|start_header_id|>user<|end_header_id|>\n\n")
    assert after == f"{PROMPT}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"


def test_a_folder_missing_files_is_refused_with_the_list(tiny_joycaption_alpha, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(tiny_joycaption_alpha.checkpoint, partial)
    (partial / "image_adapter.pt").unlink()
    (partial / "text_model" / "adapter_model.safetensors").unlink()
    with pytest.raises(BeprepareError) as caught:
        backend(JoyCaptionAlphaOneBackend, tiny_joycaption_alpha, checkpoint=partial)
    message = str(caught.value)
    assert "missing image_adapter.pt, text_model/adapter_model.safetensors" in message
    assert str(partial) in message


def test_a_pt_file_holding_code_is_not_unpickled(tiny_joycaption_alpha, tmp_path):
    import torch

    unsafe = tmp_path / "unsafe"
    shutil.copytree(tiny_joycaption_alpha.checkpoint, unsafe)
    torch.save({"linear1.weight": torch.zeros(2, 2), "hook": shutil.rmtree}, unsafe / "image_adapter.pt")
    with pytest.raises(BeprepareError, match=r"image_adapter\.pt holds more than tensors"):
        backend(JoyCaptionAlphaOneBackend, tiny_joycaption_alpha, checkpoint=unsafe)


def test_bases_that_do_not_fit_the_checkpoint_are_named(tiny_joycaption_alpha, tmp_path):
    from beprepared_dagster_tests.tiny_models.llava import build_tiny_llava

    wrong = build_tiny_llava(tmp_path / "llava")  # a folder, but not a Llama the LoRA was trained on
    extras = {"vision_model": str(tiny_joycaption_alpha.vision), "text_model": str(wrong)}
    folder = tiny_joycaption_alpha.checkpoint
    engine = JoyCaptionAlphaTwoBackend(
        ResolvedModel(ModelSpec(str(folder)), folder),
        "cpu",
        "float32",
        None,
        prompt=PROMPT,
        extra_models=extras,
    )
    with pytest.raises(BeprepareError, match="text_model"):
        engine.load()
