"""Gemma3Caption: Google's Gemma 3 (instruction-tuned, vision)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from beprepared_dagster.nodes.model import CaptionNode


class Gemma3Caption(CaptionNode):
    """Caption each image with Gemma 3 (`google/gemma-3-12b-it`, ~24 GB in bf16; `quantize="4bit"` fits it in
    ~9 GB; `model="google/gemma-3-4b-it"` is a smaller sibling).

    The repository is gated: accept Google's license on its Hugging Face page and log in (`hf auth login`)
    before the first download. Generation as the original: temperature 0.5, top_p 0.9, repetition penalty 1.1,
    up to 512 new tokens, seeded per image. Unlike the original, images run in real batches and a failed image
    is recorded as `caption_error` (retried next run), never stored as an "Error processing image" caption.

    Args:
        target_prop: the property that receives the caption.
        prompt: replaces the default prompt; `instructions` are appended after a blank line.
        repetition_penalty: > 1 discourages repeated phrases (1.0: off).
    """

    backend: ClassVar[str] = "beprepared_dagster.models.backends.gemma3:Gemma3Backend"
    family: ClassVar[str] = "Gemma 3"
    default_model: ClassVar[str] = "google/gemma-3-12b-it"
    required_files: ClassVar[tuple[str, ...]] = ("config.json", "*.safetensors*")
    default_batch_size: ClassVar[int] = 4
    default_max_new_tokens: ClassVar[int] = 512
    DEFAULT_PROMPT: ClassVar[str] = (
        "Describe this image in detail, including the subject, composition, colors, lighting, and any notable "
        "features or context."
    )
    description: ClassVar[str] = "Images captioned by Gemma 3."

    def __init__(
        self,
        target_prop: str = "caption",
        prompt: str | None = None,
        instructions: str | None = None,
        batch_size: int | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        repetition_penalty: float = 1.1,
        seed: int = 0,
        on_error: str = "keep",
        model: str | None = None,
        revision: str | None = None,
        devices: Sequence[str] | None = None,
        dtype: str | None = None,
        quantize: str | None = None,
    ) -> None:
        number = isinstance(repetition_penalty, int | float) and not isinstance(repetition_penalty, bool)
        if not number or repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be a number > 0, got {repetition_penalty!r}")
        self.repetition_penalty = float(repetition_penalty)
        self._setup_model(model, revision, batch_size, devices, dtype, quantize)
        self._setup_caption(
            target_prop, prompt, instructions, max_new_tokens, temperature, top_p, seed, on_error
        )

    def backend_args(self) -> dict[str, Any]:
        return {**super().backend_args(), "repetition_penalty": self.repetition_penalty}
