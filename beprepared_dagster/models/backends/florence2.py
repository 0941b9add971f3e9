"""Florence-2 through transformers' native `Florence2ForConditionalGeneration` (no remote code).

The prompt is a task token (`<MORE_DETAILED_CAPTION>`), which the processor rewrites into its own question;
the answer goes through `post_process_generation`, as the model card does. Decoding is the original's beam
search (3 beams) unless the node asks for sampling (temperature > 0), which is then seeded per image.
"""

from __future__ import annotations

from typing import Any

from beprepared_dagster.models.backends.sampling import generation_kwargs
from beprepared_dagster.models.backends.vlm import VLMBackend
from beprepared_dagster.models.devices import torch_dtype

BEAMS = 3


class Florence2Backend(VLMBackend):
    """Args (from the node): task (a token such as "<CAPTION>"), max_new_tokens, temperature, top_p,
    max_edge."""

    def render_prompt(self) -> str:
        return self.args["task"]

    def run(self, batch: list[Any]) -> list[Any]:
        import torch

        images = [image for image, _ in batch]
        seeds = [int(item.data.get("seed", 0)) for _, item in batch]
        inputs = self.encode(images).to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(torch_dtype(self.dtype))
        kwargs = generation_kwargs(self.args, seeds)
        if (
            "logits_processor" not in kwargs
        ):  # the sampler draws one token per image, so beams only when greedy
            kwargs["num_beams"] = BEAMS
        with torch.inference_mode():
            output = self.net.generate(**inputs, **kwargs, **self.extra_generate())
        # An encoder-decoder returns only the decoder's tokens: nothing to cut off.
        return self.decode(output, images)

    def decode(self, new_tokens: Any, images: list[Any]) -> list[Any]:
        task = self.args["task"]
        texts = self.processor.batch_decode(new_tokens, skip_special_tokens=False)
        answers = [
            self.processor.post_process_generation(text, task=task, image_size=image.size)[task]
            for text, image in zip(texts, images, strict=True)
        ]
        return [answer.strip() if isinstance(answer, str) else "" for answer in answers]
