"""LlamaCaption: Llama 3.2 Vision (Mllama)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from beprepared_dagster.nodes.model import CaptionNode


class LlamaCaption(CaptionNode):
    """Caption each image with Llama 3.2 Vision (`meta-llama/Llama-3.2-11B-Vision-Instruct`, ~22 GB in bf16;
    `quantize="4bit"` fits it in ~8 GB).

    The repository is gated: accept Meta's license on its Hugging Face page and log in (`hf auth login`)
    before the first download. Sampling: temperature 0.5 as the original, top_p 0.9, seeded per image; up to
    300 new tokens.

    Args:
        target_prop: the property that receives the caption.
        prompt: replaces the default prompt; `instructions` are appended after a blank line.
    """

    backend: ClassVar[str] = "beprepared_dagster.models.backends.mllama:MllamaBackend"
    family: ClassVar[str] = "Llama 3.2 Vision"
    default_model: ClassVar[str] = "meta-llama/Llama-3.2-11B-Vision-Instruct"
    required_files: ClassVar[tuple[str, ...]] = ("config.json", "*.safetensors*")
    default_batch_size: ClassVar[int] = 4
    DEFAULT_PROMPT: ClassVar[str] = "Write 2-3 sentences that describe this image"
    description: ClassVar[str] = "Images captioned by Llama 3.2 Vision."

    def __init__(
        self,
        target_prop: str = "caption",
        prompt: str | None = None,
        instructions: str | None = None,
        batch_size: int | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        seed: int = 0,
        on_error: str = "keep",
        model: str | None = None,
        revision: str | None = None,
        devices: Sequence[str] | None = None,
        dtype: str | None = None,
        quantize: str | None = None,
    ) -> None:
        self._setup_model(model, revision, batch_size, devices, dtype, quantize)
        self._setup_caption(
            target_prop, prompt, instructions, max_new_tokens, temperature, top_p, seed, on_error
        )
