"""Session-scoped tiny LLaVA checkpoint (JoyCaption Beta One's architecture: CLIP-style vision tower + Llama),
random weights, ~0.3 MB, built offline from configs in about a second."""

from __future__ import annotations

from pathlib import Path

import pytest

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: "
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}\n"
    "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)


def make_tokenizer(special: list[str], vocab_size: int = 400, **kwargs):
    """A small byte-level BPE tokenizer trained on a few words (no download)."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(["a photo of a cat on a red chair", "a dog in the park at dusk"] * 10, trainer)
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)


def build_tiny_llava(out: Path) -> Path:
    import transformers as T

    tok = make_tokenizer(
        ["<pad>", "<s>", "</s>", "<image>"], bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    image_processor = T.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = T.LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        patch_size=8,
        chat_template=CHAT_TEMPLATE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    config = T.LlavaConfig(
        vision_config=T.CLIPVisionConfig(
            image_size=32,
            patch_size=8,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            projection_dim=32,
        ),
        text_config=T.LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        ),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    import torch

    torch.manual_seed(0)
    T.LlavaForConditionalGeneration(config).save_pretrained(out)
    processor.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_llava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a tiny random LLaVA checkpoint + processor (loads with AutoProcessor and
    AutoModelForImageTextToText, offline)."""
    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))
