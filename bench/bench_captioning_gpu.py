"""GPU half of bench_captioning.py: real-size captioners with random weights (no download), fixed new tokens.

Each model is built from its config straight onto the device (`torch.device` context, bf16), then driven through
our `VLMBackend.run` (the code the node uses: processor, left padding, generate, decode) with images already
decoded, at the node's default batch and at a sweep of batch sizes, against the original tool's batch size on
the same model and tokens. `--scale tiny` runs the same code on tiny configs (a CPU self-check).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

SIZES = (1, 4, 8, 16, 32, 64)


def _tokenizer() -> Any:
    from beprepared_dagster_tests.tiny_models.llava import make_tokenizer

    return make_tokenizer(
        [
            "<pad>",
            "<s>",
            "</s>",
            "<image>",
            "<|image_pad|>",
            "<|vision_start|>",
            "<|vision_end|>",
            "<|video_pad|>",
        ],
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
    )


def joycaption(scale: str) -> tuple[Any, Any, int]:
    """LLaVA: SigLIP so400m/14 at 384 px + Llama-3.1-8B (JoyCaption Beta One's shape); original batch 4."""
    import transformers as T

    from beprepared_dagster_tests.tiny_models.llava import CHAT_TEMPLATE

    tok = _tokenizer()
    real = scale == "real"
    size, patch = (384, 14) if real else (32, 8)
    vision = T.SiglipVisionConfig(
        image_size=size,
        patch_size=patch,
        hidden_size=1152 if real else 32,
        intermediate_size=4304 if real else 64,
        num_hidden_layers=27 if real else 1,
        num_attention_heads=16 if real else 2,
    )
    text = T.LlamaConfig(
        vocab_size=128256 if real else len(tok),
        hidden_size=4096 if real else 32,
        intermediate_size=14336 if real else 64,
        num_hidden_layers=32 if real else 1,
        num_attention_heads=32 if real else 4,
        num_key_value_heads=8 if real else 2,
        max_position_embeddings=8192,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    config = T.LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="full",
        vision_feature_layer=-2,
        image_seq_length=(size // patch) ** 2,
    )
    ip = T.SiglipImageProcessor(size={"height": size, "width": size})
    processor = T.LlavaProcessor(
        image_processor=ip,
        tokenizer=tok,
        patch_size=patch,
        chat_template=CHAT_TEMPLATE,
        vision_feature_select_strategy="full",
        num_additional_image_tokens=0,
    )
    return T.LlavaForConditionalGeneration, (config, processor), 4


def run(model_fn: Any, device: str, dtype: str, images: list[Any], tokens: int, scale: str) -> list[str]:
    import torch

    from beprepared_dagster.models.api import ModelSpec, ResolvedModel, WorkItem
    from beprepared_dagster.models.backends.vlm import VLMBackend
    from beprepared_dagster.models.devices import torch_dtype

    cls, (config, processor), original = model_fn(scale)
    with torch.device(device):
        net = cls(config).to(torch_dtype(dtype)).eval()
    backend = VLMBackend(
        ResolvedModel(ModelSpec("random"), Path("."), None),
        device,
        dtype,
        None,
        prompt="Write a long descriptive caption for this image in a formal tone.",
        max_new_tokens=tokens,
        min_new_tokens=tokens,
        temperature=0,
    )
    backend.processor, backend.net = processor, net
    processor.tokenizer.padding_side = "left"
    backend.prompt_text = backend.render_prompt()
    lines = []
    for batch in sorted({original, *SIZES}):
        prepared = [(img, WorkItem(i, "", {"seed": i})) for i, img in enumerate(images[: batch * 2])]
        backend.run(prepared[:batch])  # warm-up
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        try:
            for start in range(0, len(prepared), batch):
                backend.run(prepared[start : start + batch])
            if device.startswith("cuda"):
                torch.cuda.synchronize()
        except torch.cuda.OutOfMemoryError:
            lines.append(f"| {batch} | out of memory | |")
            torch.cuda.empty_cache()
            break
        rate = len(prepared) / (time.perf_counter() - started)
        lines.append(f"| {batch}{' (original)' if batch == original else ''} | {rate:.2f} | |")
    return lines


def gpu_bench(args: Any) -> list[str]:
    import torch
    from PIL import Image

    device = "cuda:0" if torch.cuda.is_available() else "cpu"
    scale = "real" if device != "cpu" else "tiny"
    images = [Image.new("RGB", (1024, 768), (i * 3 % 256, 80, 160)) for i in range(128)]
    name = (
        torch.cuda.get_device_name(0) if device != "cpu" else "CPU (tiny configs: a self-check, no figures)"
    )
    lines = [f"{name}, bf16, {args.tokens} new tokens per image, random weights", ""]
    for model in args.models.split(","):
        if model != "joycaption":
            lines.append(f"{model}: not built by this script yet")
            continue
        lines += [f"### JoyCaption Beta One shape ({scale})", "", "| batch | images/s | |", "|---|---|---|"]
        lines += run(
            joycaption, device, "bfloat16" if device != "cpu" else "float32", images, args.tokens, scale
        )
    return lines
