"""Session-scoped tiny JoyCaption Alpha checkpoint, laid out like the original's download from the Hugging Face
space (`clip_model.pt`, `image_adapter.pt`, `text_model/adapter_config.json` + `adapter_model.safetensors`), with
the two bases it needs: a tiny SigLIP (vision + text towers, like `google/siglip-so400m-patch14-384`) and a tiny
Llama with a Llama-3.1-like tokenizer (special tokens, chat template). Random weights, built offline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from beprepared_dagster_tests.tiny_models.llava import make_tokenizer

HIDDEN = 32
# The structure of Llama 3.1's template: a dated system preamble, then header / content / <|eot_id|> turns.
LLAMA31_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for m in messages %}"
    "{{- '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' }}"
    "{%- if m['role'] == 'system' %}"
    "{{- 'Cutting Knowledge Date: December 2023\\nToday Date: 26 Jul 2024\\n\\n' }}{%- endif %}"
    "{{- m['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)
SPECIAL = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|eot_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|finetune_right_pad_id|>",
]


@dataclass(frozen=True)
class TinyJoyCaptionAlpha:
    """Folders: `checkpoint` (the space's checkpoint folder), `vision` (SigLIP base), `text` (Llama base)."""

    checkpoint: Path
    vision: Path
    text: Path


def build_vision(out: Path) -> Path:
    import transformers as T

    config = T.SiglipConfig(
        text_config={
            "vocab_size": 64,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": 0,
            "hidden_size": HIDDEN,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
        },
        vision_config={
            "image_size": 32,
            "patch_size": 8,
            "hidden_size": HIDDEN,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
        },
    )
    T.SiglipModel(config).save_pretrained(out)
    return out


def build_text(out: Path) -> Path:
    import transformers as T

    tok = make_tokenizer(
        SPECIAL,
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        pad_token="<|finetune_right_pad_id|>",
    )
    tok.chat_template = LLAMA31_TEMPLATE
    config = T.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=HIDDEN,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    T.LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def build_checkpoint(out: Path, vision: Path, text: Path) -> Path:
    """The four files of the original's download, from the bases above with new random weights."""
    import torch
    import transformers as T
    from peft import LoraConfig, get_peft_model

    out.mkdir(parents=True, exist_ok=True)
    tower = T.SiglipVisionModel.from_pretrained(vision)
    for p in tower.parameters():  # "fine-tuned": different from the base
        torch.nn.init.normal_(p, std=0.05)
    # Saved from a compiled DDP module, as the original's file is.
    torch.save({f"_orig_mod.module.{k}": v for k, v in tower.state_dict().items()}, out / "clip_model.pt")
    adapter = torch.nn.ModuleDict(
        {
            "linear1": torch.nn.Linear(HIDDEN, HIDDEN),
            "linear2": torch.nn.Linear(HIDDEN, HIDDEN),
            "other_tokens": torch.nn.Embedding(3, HIDDEN),
        }
    )
    torch.save(adapter.state_dict(), out / "image_adapter.pt")
    lora = get_peft_model(
        T.LlamaForCausalLM.from_pretrained(text),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
    )
    for name, p in lora.named_parameters():
        if "lora_B" in name:  # peft starts B at zero, a no-op adapter
            torch.nn.init.normal_(p, std=0.5)
    lora.save_pretrained(out / "text_model")
    return out


@pytest.fixture(scope="session")
def tiny_joycaption_alpha(tmp_path_factory: pytest.TempPathFactory) -> TinyJoyCaptionAlpha:
    """A tiny JoyCaption Alpha checkpoint folder and its two base folders (about 1 MB, a few seconds)."""
    import torch

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tiny-joycaption-alpha")
    vision = build_vision(root / "siglip")
    text = build_text(root / "llama")
    checkpoint = build_checkpoint(root / "space" / "ckpt-000001", vision, text)
    return TinyJoyCaptionAlpha(checkpoint, vision, text)
