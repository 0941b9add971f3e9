"""Qwen2-VL, Qwen2.5-VL and Qwen3-VL, built from the checkpoint's tokenizer and image processor.

transformers' Qwen processors also hold a video processor that needs torchvision, so on installs without it
(CPU wheels) `AutoProcessor` fails to build. The image half of that processor is small: resize within a pixel
budget, patchify, and repeat `<|image_pad|>` once per merged patch. `QwenInputs` does exactly that, so the same
code runs with or without torchvision.

Pixel budget: the original resized every image so its shorter side was 768 px, with no upper bound (a 4:1
panorama became 3072×768, ~3,000 visual tokens). Here an image is scaled down, keeping its aspect ratio, to at
most `max_pixels` pixels (default 1024×768, what the original gave a 4:3 photo) on the decode threads; the
image processor then rounds the sides to multiples of its patch grid. Small images are not enlarged beyond the
checkpoint's own minimum.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from beprepared_dagster.errors import BeprepareError
from beprepared_dagster.models.api import WorkItem
from beprepared_dagster.models.backends.vlm import VLMBackend

DEFAULT_MAX_PIXELS = 1024 * 768
IMAGE_PAD = "<|image_pad|>"
# The ChatML layout every Qwen-VL checkpoint uses, for folders whose tokenizer carries no template.
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<|vision_start|><|image_pad|>"
    "<|vision_end|>{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class QwenInputs:
    """The image half of a Qwen-VL processor: chat template, pixel budget, `<|image_pad|>` expansion."""

    def __init__(self, folder: Path, max_pixels: int) -> None:
        import transformers

        self.tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        self.image_processor = transformers.AutoImageProcessor.from_pretrained(folder)
        if not hasattr(self.image_processor, "merge_size"):
            raise ValueError(
                f"no Qwen-VL image processor in preprocessor_config.json "
                f"(found {type(self.image_processor).__name__})"
            )
        self.template = self.tokenizer.chat_template or _folder_template(folder) or CHATML
        self.image_token = getattr(self.tokenizer, "image_token", None) or IMAGE_PAD
        self.size = {"shortest_edge": self.image_processor.size.shortest_edge, "longest_edge": max_pixels}

    def apply_chat_template(self, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        return self.tokenizer.apply_chat_template(messages, chat_template=self.template, **kwargs)

    def __call__(self, images: list[Any], text: list[str], **kwargs: Any) -> Any:
        from transformers import BatchFeature

        pixels = self.image_processor(images=images, size=self.size, return_tensors="pt")
        merged = self.image_processor.merge_size**2
        prompts = [
            prompt.replace(self.image_token, self.image_token * (int(grid.prod()) // merged), 1)
            for prompt, grid in zip(text, pixels["image_grid_thw"], strict=True)
        ]
        encoded = self.tokenizer(prompts, padding=True, return_tensors="pt")
        return BatchFeature({**encoded, **pixels})

    def batch_decode(self, tokens: Any, **kwargs: Any) -> list[str]:
        return self.tokenizer.batch_decode(tokens, **kwargs)


def _folder_template(folder: Path) -> str | None:
    """The processor's chat template (`chat_template.json`, as Qwen2-VL ships it), if any."""
    path = folder / "chat_template.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("chat_template")


class QwenBackend(VLMBackend):
    """Args (beyond VLMBackend's): max_pixels (the pixel budget per image)."""

    def load(self) -> None:
        import transformers

        try:
            self.processor = QwenInputs(self.model.path, self.max_pixels)
            self.net = transformers.AutoModelForImageTextToText.from_pretrained(
                self.model.path, **self._load_kwargs()
            )
        except (OSError, ValueError, KeyError, ImportError, TypeError, AttributeError) as exc:
            raise BeprepareError(
                f"{self.model.label} ({self.model.path}) could not be loaded as a {self.model.spec.family} "
                f"model: {type(exc).__name__}: {exc}"
            ) from None
        if not self.quantize:
            self.net.to(self.device)
        self.net.eval()
        self.processor.tokenizer.padding_side = "left"
        self.prompt_text = self.render_prompt()

    @property
    def max_pixels(self) -> int:
        return int(self.args.get("max_pixels") or DEFAULT_MAX_PIXELS)

    def prepare(self, image: Any, item: WorkItem) -> Any:
        width, height = image.size
        if width * height > self.max_pixels:
            from PIL import Image

            scale = math.sqrt(self.max_pixels / (width * height))
            size = (max(1, int(width * scale)), max(1, int(height * scale)))
            image = image.resize(size, Image.Resampling.LANCZOS)
        return image, item
