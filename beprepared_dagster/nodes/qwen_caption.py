"""QwenVLCaption: Qwen2-VL by default; Qwen2.5-VL and Qwen3-VL checkpoints through `model=`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from beprepared_dagster.models.backends.qwen import DEFAULT_MAX_PIXELS
from beprepared_dagster.nodes.model import CaptionNode

MIN_PIXELS = 28 * 28 * 4


class QwenVLCaption(CaptionNode):
    """Caption each image with Qwen-VL (`Qwen/Qwen2-VL-7B-Instruct`, ~16 GB in bf16).

    `model="Qwen/Qwen2.5-VL-7B-Instruct"` or `"Qwen/Qwen3-VL-8B-Instruct"` (or a folder of either) runs the
    newer generations with the same node. Works without torchvision (CPU installs): the backend builds the
    model's inputs from the tokenizer and image processor itself.

    Images are scaled down to at most `max_pixels` pixels, aspect ratio kept (default 1024×768 ≈ 1,000 visual
    tokens). The original resized every image to a 768 px shorter side with no upper bound, so panoramas cost
    thousands of tokens; raise `max_pixels` for more detail, lower it for speed. Sampling: temperature 0.5 as
    the original, top_p 0.9, seeded per image.

    Args:
        target_prop: the property that receives the caption.
        prompt: replaces the default prompt; `instructions` are appended after a blank line.
        max_pixels: the pixel budget per image (width × height before the model's patch rounding).
    """

    backend: ClassVar[str] = "beprepared_dagster.models.backends.qwen:QwenBackend"
    family: ClassVar[str] = "Qwen-VL"
    default_model: ClassVar[str] = "Qwen/Qwen2-VL-7B-Instruct"
    required_files: ClassVar[tuple[str, ...]] = ("config.json", "*.safetensors*", "preprocessor_config.json")
    default_batch_size: ClassVar[int] = 8
    DEFAULT_PROMPT: ClassVar[str] = (
        "Write 4-6 sentences that describe this image. Include any relevant details about the composition, "
        "framing, quality, and subject of the image, as well as a full description of the scene. Only describe "
        "what you see in the image, and do not include any personal opinions or assumptions."
    )
    description: ClassVar[str] = "Images captioned by Qwen-VL."

    def __init__(
        self,
        target_prop: str = "caption",
        prompt: str | None = None,
        instructions: str | None = None,
        batch_size: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
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
        if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < MIN_PIXELS:
            raise ValueError(
                f"max_pixels must be an integer of at least {MIN_PIXELS} (56×56), got {max_pixels!r}"
            )
        self.max_pixels = max_pixels
        self._setup_model(model, revision, batch_size, devices, dtype, quantize)
        self._setup_caption(
            target_prop, prompt, instructions, max_new_tokens, temperature, top_p, seed, on_error
        )

    def backend_args(self) -> dict[str, Any]:
        return {**super().backend_args(), "max_pixels": self.max_pixels}
