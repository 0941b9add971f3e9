"""Any image-text-to-text model transformers loads: AutoProcessor + AutoModelForImageTextToText, the model's
chat template, real batches (left padding), seeded sampling per image.

Families that need more (Florence-2's task tokens, Qwen's pixel budget) subclass this and override
`messages`, `encode` or `decode`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from beprepared_dagster.errors import BeprepareError
from beprepared_dagster.models.api import Backend, WorkItem
from beprepared_dagster.models.backends.sampling import generation_kwargs
from beprepared_dagster.models.devices import torch_dtype

# Vision towers and projectors stay unquantized: quantizing them costs quality for little memory.
SKIP_QUANTIZE = ["vision_tower", "multi_modal_projector", "vision_model", "visual"]


class VLMBackend(Backend):
    """Args (from the node): prompt, system (optional), max_new_tokens, temperature, top_p, max_edge."""

    model_class: ClassVar[str] = "AutoModelForImageTextToText"

    def load(self) -> None:
        import transformers

        trust = self.model.spec.trust_remote_code
        try:
            self.processor = transformers.AutoProcessor.from_pretrained(
                self.model.path, trust_remote_code=trust
            )
            self.net = getattr(transformers, self.model_class).from_pretrained(
                self.model.path, trust_remote_code=trust, **self._load_kwargs()
            )
        except (OSError, ValueError, KeyError, ImportError, TypeError) as exc:
            raise BeprepareError(
                f"{self.model.label} ({self.model.path}) could not be loaded as a {self.model.spec.family} "
                f"model: {type(exc).__name__}: {exc}"
            ) from None
        if not self.quantize:
            self.net.to(self.device)
        self.net.eval()
        tokenizer = getattr(self.processor, "tokenizer", None)
        if tokenizer is not None:
            tokenizer.padding_side = "left"  # generation continues at the right edge of every row
        self.prompt_text = self.render_prompt()

    def _load_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"dtype": torch_dtype(self.dtype)}
        if self.quantize:
            from transformers import BitsAndBytesConfig

            four = self.quantize == "4bit"
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=four,
                load_in_8bit=not four,
                bnb_4bit_compute_dtype=torch_dtype(self.dtype),
                llm_int8_skip_modules=SKIP_QUANTIZE,
            )
            kwargs["device_map"] = {"": self.device}
        return kwargs

    def messages(self) -> list[dict[str, Any]]:
        content = [{"type": "image"}, {"type": "text", "text": self.args["prompt"]}]
        system = self.args.get("system")
        head = [{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []
        return [*head, {"role": "user", "content": content}]

    def render_prompt(self) -> str:
        return self.processor.apply_chat_template(self.messages(), add_generation_prompt=True, tokenize=False)

    def prepare(self, image: Any, item: WorkItem) -> Any:
        max_edge = self.args.get("max_edge")
        if max_edge and max(image.size) > max_edge:
            from PIL import Image

            image = image.copy()
            image.thumbnail((max_edge, max_edge), Image.Resampling.LANCZOS)
        return image, item

    def encode(self, images: list[Any]) -> Any:
        return self.processor(
            images=[[image] for image in images],  # one image list per prompt (Gemma 3, Mllama need it)
            text=[self.prompt_text] * len(images),
            padding=True,
            return_tensors="pt",
        )

    def run(self, batch: list[Any]) -> list[Any]:
        import torch

        images = [image for image, _ in batch]
        seeds = [int(item.data.get("seed", 0)) for _, item in batch]
        inputs = self.encode(images).to(self.device)
        if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
            inputs["pixel_values"] = inputs["pixel_values"].to(torch_dtype(self.dtype))
        with torch.inference_mode():
            output = self.net.generate(
                **inputs, **generation_kwargs(self.args, seeds), **self.extra_generate()
            )
        return self.decode(output[:, inputs["input_ids"].shape[1] :], images)

    def extra_generate(self) -> dict[str, Any]:
        tokenizer = getattr(self.processor, "tokenizer", None)
        pad = getattr(tokenizer, "pad_token_id", None) if tokenizer is not None else None
        if pad is None and tokenizer is not None:
            pad = tokenizer.eos_token_id
        return {"pad_token_id": pad} if pad is not None else {}

    def decode(self, new_tokens: Any, images: list[Any]) -> list[Any]:
        return [text.strip() for text in self.processor.batch_decode(new_tokens, skip_special_tokens=True)]

    def close(self) -> None:
        self.net = None
        self.processor = None
