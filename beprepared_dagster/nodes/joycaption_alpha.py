"""JoyCaption Alpha One and Alpha Two: the original's default captioners (SigLIP + image adapter + Llama 3.1
with a LoRA), loaded from a checkpoint folder laid out like the original's download.

`model=` is `<owner>/<space>/<checkpoint folder>` (a Hugging Face space, where these checkpoints live, as the
original downloads them; only that folder is fetched) or a local folder holding `clip_model.pt`,
`image_adapter.pt` and `text_model/`. The two bases are separate checkpoints: `vision_model=` (SigLIP; only its
config.json is needed, the checkpoint holds every vision weight) and `text_model=` (the Llama 3.1 the LoRA was
trained on). All three are resolved before any image is captioned, and not at all when every image is cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from beprepared_dagster.models.api import ModelSpec
from beprepared_dagster.models.backends.joycaption_alpha import CHECKPOINT_FILES
from beprepared_dagster.models.loading import is_folder
from beprepared_dagster.nodes.joycaption_prompts import alpha_one_prompt, alpha_two_prompt
from beprepared_dagster.nodes.model import CaptionNode

BACKENDS = "beprepared_dagster.models.backends.joycaption_alpha"
SIGLIP = "google/siglip-so400m-patch14-384"


class _JoyCaptionAlpha(CaptionNode):
    family: ClassVar[str] = "JoyCaption Alpha checkpoint"
    required_files: ClassVar[tuple[str, ...]] = CHECKPOINT_FILES
    default_batch_size: ClassVar[int] = 4
    # The original sampled with Llama 3.1's generation defaults, up to 300 new tokens.
    default_max_new_tokens: ClassVar[int] = 300
    default_temperature: ClassVar[float] = 0.6
    default_top_p: ClassVar[float] = 0.9
    default_text_model: ClassVar[str] = ""

    def _setup_bases(self, vision_model: str | None, text_model: str | None) -> None:
        for name, value in (("vision_model", vision_model), ("text_model", text_model)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{name} must be a hub id or a folder, got {value!r}")
        self.vision_model = vision_model or SIGLIP
        self.text_model = text_model or self.default_text_model
        if not is_folder(self.model) and not 2 <= len(self.model.strip("/").split("/")) <= 3:
            raise ValueError(
                f"model={self.model!r}: use '<owner>/<space>/<checkpoint folder>' (a Hugging Face space, "
                "as the original downloads) or a local folder holding clip_model.pt, image_adapter.pt and "
                "text_model/"
            )

    def model_spec(self) -> ModelSpec:
        if is_folder(self.model):
            return ModelSpec(self.model, family=self.family, required_files=CHECKPOINT_FILES)
        owner, space, *sub = self.model.strip("/").split("/")
        prefix = f"{sub[0]}/" if sub else ""
        return ModelSpec(
            model=f"{owner}/{space}",
            revision=self.revision,
            family=self.family,
            required_files=tuple(prefix + name for name in CHECKPOINT_FILES),
            allow_patterns=tuple(prefix + name for name in CHECKPOINT_FILES),
            repo_type="space",
            subfolder=sub[0] if sub else None,
        )

    def extra_specs(self) -> dict[str, ModelSpec]:
        return {
            "vision_model": ModelSpec(
                self.vision_model,
                family="SigLIP vision base",
                allow_patterns=("config.json",),
            ),
            "text_model": ModelSpec(
                self.text_model,
                family="Llama 3.1 text base",
                required_files=("config.json", "tokenizer*", "*.safetensors"),
                # Not the repository's original/ folder (the same weights again, as one .pth).
                allow_patterns=("*.json", "*.safetensors"),
            ),
        }


class JoyCaptionAlphaOne(_JoyCaptionAlpha):
    """Caption each image with JoyCaption Alpha One (SigLIP + adapter + Llama 3.1 8B with a LoRA; ~19 GB bf16).

    Args:
        caption_type: "descriptive", "stable_diffusion" or "booru" (the last two are always formal).
        caption_tone: "formal" or "informal".
        caption_length: "any", a word count, or "very short" … "very long".
        prompt: replaces the prompt built from the three above; `instructions` are appended after a blank line.
        model: `<owner>/<space>/<checkpoint folder>` or a local checkpoint folder (default: the original's).
        vision_model: the SigLIP base (default google/siglip-so400m-patch14-384; only config.json is read).
        text_model: the Llama 3.1 base (default the original's meta-llama/Meta-Llama-3.1-8B, gated on the hub:
            accept its license, or pass a copy such as unsloth/Meta-Llama-3.1-8B).
    """

    backend: ClassVar[str] = f"{BACKENDS}:JoyCaptionAlphaOneBackend"
    default_model: ClassVar[str] = "fancyfeast/joy-caption-alpha-one/9em124t2-499968"
    default_text_model: ClassVar[str] = "meta-llama/Meta-Llama-3.1-8B"
    description: ClassVar[str] = (
        "Images captioned by JoyCaption Alpha One ({caption_type}, {caption_tone}, {caption_length})."
    )

    def __init__(
        self,
        target_prop: str = "caption",
        caption_type: str = "descriptive",
        caption_tone: str = "formal",
        caption_length: str | int = "any",
        batch_size: int = 4,
        prompt: str | None = None,
        instructions: str | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        seed: int = 0,
        on_error: str = "keep",
        model: str | None = None,
        revision: str | None = None,
        vision_model: str | None = None,
        text_model: str | None = None,
        devices: Sequence[str] | None = None,
        dtype: str | None = None,
        quantize: str | None = None,
    ) -> None:
        built = alpha_one_prompt(caption_type, caption_tone, caption_length)
        self._setup_model(model, revision, batch_size, devices, dtype, quantize)
        self._setup_bases(vision_model, text_model)
        self._setup_caption(
            target_prop, prompt or built, instructions, max_new_tokens, temperature, top_p, seed, on_error
        )


class JoyCaptionAlphaTwo(_JoyCaptionAlpha):
    """Caption each image with JoyCaption Alpha Two (as Alpha One, on Llama 3.1 8B Instruct's chat template).

    Args:
        caption_type: one of `joycaption_prompts.TWO_TYPES` ("descriptive", "training_prompt", "booru_tag_list"…).
        caption_length: "any", a word count, or "very short" … "very long".
        extra_options: sentences appended to the prompt (`joycaption_prompts.EXTRA_OPTIONS` are the ones it
            was trained on); `{name}` is filled from `name_input`.
        name_input: the name that fills `{name}` in the prompt and the extra options.
        model: `<owner>/<space>/<checkpoint folder>` or a local checkpoint folder (default: the original's).
        vision_model: the SigLIP base (default google/siglip-so400m-patch14-384; only config.json is read).
        text_model: the Llama 3.1 Instruct base (default unsloth/Meta-Llama-3.1-8B-Instruct, as the original).
    """

    backend: ClassVar[str] = f"{BACKENDS}:JoyCaptionAlphaTwoBackend"
    default_model: ClassVar[str] = "fancyfeast/joy-caption-alpha-two/cgrkzexw-599808"
    default_text_model: ClassVar[str] = "unsloth/Meta-Llama-3.1-8B-Instruct"
    description: ClassVar[str] = (
        "Images captioned by JoyCaption Alpha Two ({caption_type}, {caption_length})."
    )

    def __init__(
        self,
        target_prop: str = "caption",
        caption_type: str = "descriptive",
        caption_length: str | int = "long",
        extra_options: Sequence[str] = (),
        name_input: str = "",
        batch_size: int = 4,
        prompt: str | None = None,
        instructions: str | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        seed: int = 0,
        on_error: str = "keep",
        model: str | None = None,
        revision: str | None = None,
        vision_model: str | None = None,
        text_model: str | None = None,
        devices: Sequence[str] | None = None,
        dtype: str | None = None,
        quantize: str | None = None,
    ) -> None:
        options = list(extra_options) if not isinstance(extra_options, str) else extra_options
        built = alpha_two_prompt(caption_type, caption_length, options, name_input)
        self._setup_model(model, revision, batch_size, devices, dtype, quantize)
        self._setup_bases(vision_model, text_model)
        self._setup_caption(
            target_prop, prompt or built, instructions, max_new_tokens, temperature, top_p, seed, on_error
        )
