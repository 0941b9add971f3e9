"""Llama 3.2 Vision (Mllama) on the generic image-text-to-text backend.

Its processor, like Gemma 3's, pairs prompts with images row by row: it wants one list of images per prompt
(a flat list of N images is read as N images for the first prompt), and its chat template already starts
with the BOS token, which the tokenizer would otherwise add a second time.
"""

from __future__ import annotations

from typing import Any

from beprepared_dagster.models.backends.vlm import VLMBackend


class RowImagesBackend(VLMBackend):
    """A VLM whose processor takes one image list per prompt (Mllama, Gemma 3)."""

    def encode(self, images: list[Any]) -> Any:
        tokenizer = self.processor.tokenizer
        bos = getattr(tokenizer, "bos_token", None)
        return self.processor(
            images=[[image] for image in images],
            text=[self.prompt_text] * len(images),
            padding=True,
            add_special_tokens=not (bos and self.prompt_text.startswith(bos)),
            return_tensors="pt",
        )


class MllamaBackend(RowImagesBackend):
    """Llama 3.2 Vision: the prompt ends with the assistant header (the original rendered it without one and
    cut a leading "assistant" off every caption)."""
