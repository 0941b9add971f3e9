"""Tiny stand-in for xGen-MM (BLIP-3)'s remote anyres image processor: `processor([image], return_tensors="pt",
image_aspect_ratio="anyres")` returns pixel_values of shape (1, crops, 3, 16, 16): a base view, plus two tiles
for a wide image."""

import numpy as np
import torch
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

SIZE = 16


class TinyBlip3ImageProcessor(BaseImageProcessor):
    model_input_names = ["pixel_values"]

    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def _view(self, image):
        array = np.asarray(image.convert("RGB").resize((SIZE, SIZE)), dtype=np.float32) / 127.5 - 1
        return torch.from_numpy(array).permute(2, 0, 1)

    def preprocess(self, images, return_tensors=None, image_aspect_ratio="pad", **kwargs):
        batch = []
        for image in images:
            views = [self._view(image)]
            width, height = image.size
            if image_aspect_ratio == "anyres" and width > height:
                views += [
                    self._view(image.crop((0, 0, width // 2, height))),
                    self._view(image.crop((width // 2, 0, width, height))),
                ]
            batch.append(torch.stack(views))
        if len({v.shape for v in batch}) > 1:
            raise ValueError("one image per call: anyres crops differ in number")
        return BatchFeature({"pixel_values": torch.stack(batch)}, tensor_type=None)

    def __call__(self, images, **kwargs):
        return self.preprocess(images, **kwargs)
