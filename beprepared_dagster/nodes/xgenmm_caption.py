"""XGenMMCaption: captions from xGen-MM / BLIP-3 (`Salesforce/xgen-mm-phi3-mini-instruct-r-v1`), a checkpoint
that runs its own Python code."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from beprepared_dagster.nodes.model import CaptionNode

ORIGINAL_CROP = (0.05, 0.91)


def check_crop(crop: Any) -> tuple[float, float] | None:
    """`crop` as (top, bottom) fractions of the height, or None; ValueError naming the parameter."""
    if crop is None:
        return None
    try:
        top, bottom = (float(v) for v in crop)
    except (TypeError, ValueError):
        raise ValueError(
            f"crop must be (top, bottom) fractions of the height or None, got {crop!r}"
        ) from None
    if not 0 <= top < bottom <= 1:
        raise ValueError(f"crop={crop!r}: need 0 <= top < bottom <= 1 (fractions of the height)")
    return top, bottom


class XGenMMCaption(CaptionNode):
    """Caption each image with xGen-MM (Phi-3 mini, ~9 GB in bf16). Loads with trust_remote_code=True (logged).

    Args:
        prompt: the instruction (default: the original's); `instructions` are appended after a blank line.
        crop: the horizontal band of the image the model sees, as (top, bottom) fractions of its height. The
            default (0.05, 0.91) is the crop the original always applied without saying so (it drops
            5 % at the top and 9 % at the bottom, e.g. watermarks and captions); None shows the whole image.
        max_new_tokens: the original's 4096 by default; generation stops at the model's end of turn.
        temperature: 0 (default, greedy as the original) or a sampling temperature, seeded per image.
        model: a hub id or a local folder of an xGen-MM checkpoint (default: the original's).
    """

    backend: ClassVar[str] = "beprepared_dagster.models.backends.remote_code:XGenMMBackend"
    family: ClassVar[str] = "xGen-MM (remote code)"
    default_model: ClassVar[str] = "Salesforce/xgen-mm-phi3-mini-instruct-r-v1"
    required_files: ClassVar[tuple[str, ...]] = ("config.json", "*.py")
    trust_remote_code: ClassVar[bool] = True
    default_batch_size: ClassVar[int] = 4
    default_max_new_tokens: ClassVar[int] = 4096
    default_temperature: ClassVar[float] = 0.0
    DEFAULT_PROMPT: ClassVar[str] = (
        "Your task is to write a caption for this image. Be sure to clearly describe any subjects of the image "
        "and their characteristics and position within the image. Also describe aspects of the background, "
        "lighting, style, and quality if those details are apparent."
    )
    description: ClassVar[str] = "Images captioned by xGen-MM ({model})."

    def __init__(
        self,
        target_prop: str = "caption",
        prompt: str | None = None,
        instructions: str | None = None,
        batch_size: int | None = None,
        crop: Sequence[float] | None = ORIGINAL_CROP,
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
        self.crop = check_crop(crop)
        self._setup_model(model, revision, batch_size, devices, dtype, quantize)
        self._setup_caption(
            target_prop, prompt, instructions, max_new_tokens, temperature, top_p, seed, on_error
        )

    def backend_args(self) -> dict[str, Any]:
        return {**super().backend_args(), "crop": list(self.crop) if self.crop else None}
