"""Local captioners on the generic image-text-to-text backend: `VLMCaption` for any model transformers loads
with AutoModelForImageTextToText (LLaVA, Idefics3/SmolVLM, PaliGemma, Gemma 3, Llama 3.2 Vision…), and
`JoyCaptionBetaOne`, the current JoyCaption (a plain LLaVA checkpoint) with JoyCaption's prompt vocabulary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from beprepared_dagster.nodes.joycaption_prompts import beta_one_prompt
from beprepared_dagster.nodes.model import CaptionNode

VLM_BACKEND = "beprepared_dagster.models.backends.vlm:VLMBackend"
JOY_SYSTEM = "You are a helpful image captioner."


class VLMCaption(CaptionNode):
    """Caption each image with any image-text-to-text model (`model=` a hub id or a folder).

    Args:
        model: the checkpoint (required).
        prompt: the instruction sent with the image; `instructions` are appended after a blank line.
        system: an optional system message.
        trust_remote_code: let a checkpoint's own Python code run (only for repositories you trust).
        max_edge: downscale images to this longest edge before the processor (None: as they are).
    """

    backend: ClassVar[str] = VLM_BACKEND
    family: ClassVar[str] = "image-text-to-text"
    default_batch_size: ClassVar[int] = 8
    DEFAULT_PROMPT: ClassVar[str] = (
        "Describe this image in detail for a text-to-image training caption: subject, composition, "
        "lighting and style."
    )
    description: ClassVar[str] = "Images captioned by {model}."

    def __init__(
        self,
        model: str,
        prompt: str | None = None,
        target_prop: str = "caption",
        instructions: str | None = None,
        system: str | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        seed: int = 0,
        on_error: str = "keep",
        trust_remote_code: bool = False,
        max_edge: int | None = None,
        revision: str | None = None,
        batch_size: int | None = None,
        devices: Sequence[str] | None = None,
        dtype: str | None = None,
        quantize: str | None = None,
    ) -> None:
        if not model:
            raise ValueError("model is required: a hub id or a local folder")
        self._setup_model(model, revision, batch_size, devices, dtype, quantize)
        self._setup_caption(
            target_prop, prompt, instructions, max_new_tokens, temperature, top_p, seed, on_error
        )
        self.trust_remote_code = bool(trust_remote_code)  # type: ignore[misc]
        self.system, self.max_edge = system, max_edge

    def backend_args(self) -> dict:
        return {**super().backend_args(), "system": self.system, "max_edge": self.max_edge}


class JoyCaptionBetaOne(CaptionNode):
    """Caption each image with JoyCaption Beta One (LLaVA: SigLIP + Llama 3.1 8B; ~17 GB in bf16).

    `caption_type` / `caption_length` / `extra_options` / `name_input` build JoyCaption's own prompt (see
    `joycaption_prompts`); `prompt=` replaces it. Sampling defaults are JoyCaption's (temperature 0.6,
    top_p 0.9, up to 512 new tokens).

    Args:
        caption_type: one of JoyCaption Beta One's caption types ("descriptive", "straightforward",
            "stable_diffusion", "booru_tag_list", …: `joycaption_prompts.BETA_ONE_TYPES`).
        caption_length: "any", a word count, or "very short" … "very long".
        extra_options: sentences appended to the prompt (JoyCaption's own list of options).
        name_input: the name that fills `{name}` in the extra options.
    """

    backend: ClassVar[str] = VLM_BACKEND
    family: ClassVar[str] = "LLaVA (JoyCaption Beta One)"
    default_model: ClassVar[str] = "fancyfeast/llama-joycaption-beta-one-hf-llava"
    required_files: ClassVar[tuple[str, ...]] = ("config.json", "*.safetensors*")
    default_batch_size: ClassVar[int] = 16
    default_max_new_tokens: ClassVar[int] = 512
    default_temperature: ClassVar[float] = 0.6
    default_top_p: ClassVar[float] = 0.9
    description: ClassVar[str] = "Images captioned by JoyCaption Beta One ({caption_type}, {caption_length})."

    def __init__(
        self,
        target_prop: str = "caption",
        caption_type: str = "descriptive",
        caption_length: str | int = "long",
        extra_options: Sequence[str] = (),
        name_input: str = "",
        prompt: str | None = None,
        instructions: str | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        seed: int = 0,
        on_error: str = "keep",
        model: str | None = None,
        revision: str | None = None,
        batch_size: int | None = None,
        devices: Sequence[str] | None = None,
        dtype: str | None = None,
        quantize: str | None = None,
    ) -> None:
        built = beta_one_prompt(caption_type, caption_length, list(extra_options), name_input)
        self._setup_model(model, revision, batch_size, devices, dtype, quantize)
        self._setup_caption(
            target_prop, prompt or built, instructions, max_new_tokens, temperature, top_p, seed, on_error
        )

    def backend_args(self) -> dict:
        # JoyCaption sees 384 px: a cheap downscale on the decode threads saves the processor's work.
        return {**super().backend_args(), "system": JOY_SYSTEM, "max_edge": 768}
