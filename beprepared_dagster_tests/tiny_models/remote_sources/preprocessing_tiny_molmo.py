"""Tiny stand-in for Molmo v1's remote processor: `process(images=, text=)` returns one example's tensors
(input_ids with the image tokens, images as crops × patches × pixels, image_input_idx, image_masks). A wide
image gets two crops, a tall or square one one, so examples differ in length as the real ones do."""

import numpy as np
import torch
from transformers import ProcessorMixin

PATCH, CROP = 8, 16


class TinyMolmoProcessor(ProcessorMixin):
    attributes = ["tokenizer"]
    tokenizer_class = "AutoTokenizer"

    def __init__(self, tokenizer=None, **kwargs):
        super().__init__(tokenizer, **kwargs)

    def process(self, images=None, text=None, **kwargs):
        (image,) = images
        width, height = image.size
        count = 2 if width > height else 1
        wide = np.asarray(image.convert("RGB").resize((CROP * count, CROP)), dtype=np.float32) / 127.5 - 1
        crops = [wide[:, i * CROP : (i + 1) * CROP] for i in range(count)]
        patches = [
            crop[y : y + PATCH, x : x + PATCH].reshape(-1)
            for crop in crops
            for y in range(0, CROP, PATCH)
            for x in range(0, CROP, PATCH)
        ]
        per_crop = (CROP // PATCH) ** 2
        tok = self.tokenizer
        patch_id = tok.convert_tokens_to_ids("<im_patch>")
        head = [tok.convert_tokens_to_ids("<im_start>")] + [patch_id] * (per_crop * count)
        head.append(tok.convert_tokens_to_ids("<im_end>"))
        ids = head + tok.encode(f" User: {text} Assistant:", add_special_tokens=False)
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "images": torch.from_numpy(np.stack(patches)).reshape(count, per_crop, -1),
            "image_input_idx": torch.arange(1, 1 + per_crop * count).reshape(count, per_crop),
            "image_masks": torch.ones((count, per_crop)),
        }
