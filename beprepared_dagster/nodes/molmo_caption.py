"""MolmoCaption: captions from Molmo v1 (`allenai/Molmo-7B-D-0924`), a checkpoint that runs its own Python code
(transformers 5 has only Molmo 2 natively), in real batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from beprepared_dagster.nodes.model import CaptionNode


class MolmoCaption(CaptionNode):
    """Caption each image with Molmo (7B; ~17 GB in bf16). Loads with trust_remote_code=True (logged).

    Args:
        prompt: the instruction (default: the original's); `instructions` are appended after a blank line.
        batch_size: images per device batch; each batch is one padded batch (the original's batch_size > 1 sent
            several images as one prompt).
        temperature: 0 (default, greedy as the original) or a sampling temperature, seeded per image.
        model: a hub id or a local folder of a Molmo v1 checkpoint (default: the original's).
    """

    backend: ClassVar[str] = "beprepared_dagster.models.backends.remote_code:MolmoBackend"
    family: ClassVar[str] = "Molmo (remote code)"
    default_model: ClassVar[str] = "allenai/Molmo-7B-D-0924"
    required_files: ClassVar[tuple[str, ...]] = ("config.json", "*.py")
    trust_remote_code: ClassVar[bool] = True
    default_batch_size: ClassVar[int] = 4
    default_max_new_tokens: ClassVar[int] = 512
    default_temperature: ClassVar[float] = 0.0
    DEFAULT_PROMPT: ClassVar[str] = (
        "Describe the contents and style of this image. Do not make inferences or draw conclusions, simply "
        "describe what is there without bias."
    )
    description: ClassVar[str] = "Images captioned by Molmo ({model})."

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
