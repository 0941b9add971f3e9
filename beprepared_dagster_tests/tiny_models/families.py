"""Session-scoped tiny random checkpoints of the captioner families: Florence-2, Qwen2-VL, Qwen2.5-VL, Gemma 3,
Llama 3.2 Vision (Mllama), Idefics3 and PaliGemma. Each is built offline from configs (hidden size 32, one or
two layers, 32–64 px images), saved with `save_pretrained` and loaded back by the product's own code.

Qwen folders hold a tokenizer and a `Qwen2VLImageProcessorPil` but no processor config: the Qwen processors
need torchvision (their video processor), which CPU installs lack, so the backend builds its inputs itself.
The Qwen2-VL folder carries a ChatML chat template; the Qwen2.5-VL one has none (the backend's own applies).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from beprepared_dagster_tests.tiny_models.llava import CHAT_TEMPLATE, make_tokenizer

QWEN_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<|vision_start|><|image_pad|>"
    "<|vision_end|>{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TINY_TEXT = {"hidden_size": 32, "intermediate_size": 64, "max_position_embeddings": 512}
TINY_VISION = {"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 64}


def _save(model_class, config, processor, out: Path) -> Path:
    import torch

    torch.manual_seed(0)
    model_class(config).save_pretrained(out)
    processor.save_pretrained(out)
    return out


def _ids(tok, **names: str) -> dict[str, int]:
    return {key: tok.convert_tokens_to_ids(token) for key, token in names.items()}


def build_tiny_florence2(out: Path) -> Path:
    """Native Florence-2 (DaViT + BART); `image_seq_length` is the 8×8 spatial tokens plus one."""
    import transformers as T

    locs = [f"<loc_{i}>" for i in range(1000)]
    special = [
        "<s>",
        "<pad>",
        "</s>",
        "<unk>",
        "<mask>",
        "<image>",
        *locs,
        "<od>",
        "</od>",
        "<ocr>",
        "</ocr>",
    ]
    tok = make_tokenizer(
        special, 1500, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
        mask_token="<mask>", extra_special_tokens={"image_token": "<image>"},
    )  # fmt: skip
    image_processor = T.CLIPImageProcessor(size={"height": 64, "width": 64}, do_center_crop=False)
    image_processor.image_seq_length = 65
    processor = T.Florence2Processor(image_processor, tok, post_processor_config={"pure_text": {}})
    vision = dict(
        depths=[1, 1], patch_size=[7, 3], patch_stride=[4, 2], patch_padding=[3, 1], patch_prenorm=[False, True],
        embed_dim=[16, 32], num_heads=[2, 4], num_groups=[2, 4], window_size=4, projection_dim=32,
        max_position_embeddings=16, max_temporal_embeddings=4,
    )  # fmt: skip
    text = dict(
        vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=256,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.eos_token_id,
    )  # fmt: skip
    config = T.Florence2Config(vision_config=vision, text_config=text, image_token_id=tok.image_token_id)
    return _save(T.Florence2ForConditionalGeneration, config, processor, out)


def build_tiny_qwen(out: Path, version: str = "2", chat_template: str | None = QWEN_TEMPLATE) -> Path:
    """Qwen2-VL (`version="2"`) or Qwen2.5-VL (`"2.5"`): model, tokenizer and PIL image processor."""
    import transformers as T

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>"]
    tok = make_tokenizer(
        [*special, "<|image_pad|>", "<|video_pad|>"], eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tok.chat_template = chat_template
    ids = _ids(
        tok, image_token_id="<|image_pad|>", video_token_id="<|video_pad|>",
        vision_start_token_id="<|vision_start|>", vision_end_token_id="<|vision_end|>",
    )  # fmt: skip
    rope = {"rope_type": "default", "mrope_section": [2, 1, 1], "rope_theta": 10000.0}
    text = dict(
        TINY_TEXT, vocab_size=len(tok), num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None, rope_parameters=rope,
    )  # fmt: skip
    patches = {"patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}
    if version == "2":
        vision = dict(patches, depth=1, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2)
        model_class, config = (
            T.Qwen2VLForConditionalGeneration,
            T.Qwen2VLConfig(text_config=text, vision_config=vision, **ids),
        )
    else:
        vision = dict(
            patches, depth=1, hidden_size=32, out_hidden_size=32, intermediate_size=64, num_heads=2,
            window_size=56, fullatt_block_indexes=[0],
        )  # fmt: skip
        model_class, config = (
            T.Qwen2_5_VLForConditionalGeneration,
            T.Qwen2_5_VLConfig(text_config=text, vision_config=vision, **ids),
        )
    _save(model_class, config, tok, out)
    T.Qwen2VLImageProcessorPil(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 16).save_pretrained(out)
    return out


def build_tiny_gemma3(out: Path) -> Path:
    """Gemma 3: SigLIP tower pooled to 4 soft tokens per image + a Gemma 3 text model."""
    import transformers as T

    names = {
        "boi_token": "<start_of_image>",
        "eoi_token": "<end_of_image>",
        "image_token": "<image_soft_token>",
    }
    tok = make_tokenizer(
        ["<pad>", "<eos>", "<bos>", *names.values(), "<start_of_turn>", "<end_of_turn>"],
        bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", extra_special_tokens=names,
    )  # fmt: skip
    processor = T.Gemma3Processor(
        image_processor=T.Gemma3ImageProcessor(size={"height": 32, "width": 32}),
        tokenizer=tok,
        chat_template=CHAT_TEMPLATE.replace("<image>", "<start_of_image>"),
        image_seq_length=4,
    )
    text = dict(
        TINY_TEXT, vocab_size=len(tok), num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        head_dim=16, query_pre_attn_scalar=16, sliding_window=64, pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id,
    )  # fmt: skip
    vision = dict(TINY_VISION, model_type="siglip_vision_model", num_hidden_layers=1, num_attention_heads=2)
    ids = _ids(
        tok, boi_token_index=names["boi_token"], eoi_token_index=names["eoi_token"],
        image_token_index=names["image_token"],
    )  # fmt: skip
    config = T.Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4, **ids)
    return _save(T.Gemma3ForConditionalGeneration, config, processor, out)


def build_tiny_mllama(out: Path) -> Path:
    """Llama 3.2 Vision: a tiled vision encoder (up to 2 tiles) cross-attended from layer 1 of a Llama."""
    import transformers as T

    tok = make_tokenizer(
        ["<pad>", "<s>", "</s>", "<|image|>", "<|python_tag|>"], bos_token="<s>", eos_token="</s>",
        pad_token="<pad>", extra_special_tokens={"image_token": "<|image|>"},
    )  # fmt: skip
    processor = T.MllamaProcessor(
        image_processor=T.MllamaImageProcessor(size={"height": 32, "width": 32}, max_image_tiles=2),
        tokenizer=tok,
        chat_template=CHAT_TEMPLATE.replace("<image>", "<|image|>"),
    )
    vision = dict(
        TINY_VISION, num_hidden_layers=1, num_global_layers=1, attention_heads=2, vision_output_dim=64,
        max_num_tiles=2, intermediate_layers_indices=[0], supported_aspect_ratios=[[1, 1], [1, 2], [2, 1]],
    )  # fmt: skip
    text = dict(
        TINY_TEXT, vocab_size=len(tok) + 8, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        cross_attention_layers=[1], bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    config = T.MllamaConfig(
        vision_config=vision, text_config=text, **_ids(tok, image_token_index="<|image|>")
    )
    return _save(T.MllamaForConditionalGeneration, config, processor, out)


def build_tiny_idefics3(out: Path) -> Path:
    """Idefics3 (SmolVLM v1's architecture) without image splitting: one 32 px image → 4 tokens."""
    import transformers as T

    names = {
        "fake_image_token": "<fake_token_around_image>",
        "image_token": "<image>",
        "end_of_utterance_token": "<end_of_utterance>",
        "global_image_token": "<global-img>",
    }
    tok = make_tokenizer(
        ["<|endoftext|>", "<|im_start|>", *names.values()], bos_token="<|im_start|>",
        eos_token="<end_of_utterance>", pad_token="<|endoftext|>", extra_special_tokens=names,
    )  # fmt: skip
    image_processor = T.Idefics3ImageProcessor(
        do_image_splitting=False, size={"longest_edge": 32}, max_image_size={"longest_edge": 32}
    )
    processor = T.Idefics3Processor(image_processor, tok, image_seq_len=4, chat_template=CHAT_TEMPLATE)
    text = dict(
        TINY_TEXT, model_type="llama", vocab_size=len(tok), num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    vision = dict(TINY_VISION, num_hidden_layers=1, num_attention_heads=2)
    config = T.Idefics3Config(
        vision_config=vision, text_config=text, scale_factor=2, **_ids(tok, image_token_id="<image>")
    )
    return _save(T.Idefics3ForConditionalGeneration, config, processor, out)


def build_tiny_paligemma(out: Path) -> Path:
    """PaliGemma: SigLIP (16 tokens per image) + Gemma; prompts are plain text ("caption en"), no chat
    template, as in the real checkpoints."""
    import transformers as T

    tok = make_tokenizer(
        ["<pad>", "<eos>", "<bos>", "<image>"], bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
    )  # fmt: skip
    image_processor = T.SiglipImageProcessor(size={"height": 32, "width": 32})
    image_processor.image_seq_length = 16
    processor = T.PaliGemmaProcessor(image_processor, tok)  # adds its location/segmentation tokens
    vision = dict(
        TINY_VISION, model_type="siglip_vision_model", num_hidden_layers=1, num_attention_heads=2,
        projection_dim=32,
    )  # fmt: skip
    text = dict(
        TINY_TEXT, model_type="gemma", vocab_size=len(tok), num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
    )  # fmt: skip
    config = T.PaliGemmaConfig(
        vision_config=vision, text_config=text, projection_dim=32, **_ids(tok, image_token_id="<image>")
    )
    return _save(T.PaliGemmaForConditionalGeneration, config, processor, out)


def _fixture(builder, name: str, **kwargs):
    def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
        return builder(tmp_path_factory.mktemp(name), **kwargs)

    build.__doc__ = f"A folder holding a tiny random {name} checkpoint ({builder.__doc__.split(':')[0]})."
    return pytest.fixture(scope="session", name=name.replace("-", "_"))(build)


tiny_florence2 = _fixture(build_tiny_florence2, "tiny-florence2")
tiny_qwen2vl = _fixture(build_tiny_qwen, "tiny-qwen2vl", version="2")
tiny_qwen25vl = _fixture(build_tiny_qwen, "tiny-qwen25vl", version="2.5", chat_template=None)
tiny_gemma3 = _fixture(build_tiny_gemma3, "tiny-gemma3")
tiny_mllama = _fixture(build_tiny_mllama, "tiny-mllama")
tiny_idefics3 = _fixture(build_tiny_idefics3, "tiny-idefics3")
tiny_paligemma = _fixture(build_tiny_paligemma, "tiny-paligemma")
