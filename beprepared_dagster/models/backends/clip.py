"""CLIP and SigLIP image embeddings (transformers), L2-normalised; and the aesthetic head on top of them.

Only the vision tower is loaded from a full CLIP / SigLIP checkpoint (`openai/clip-vit-large-patch14`,
`google/siglip-so400m-patch14-384`): CLIP's projected `image_embeds`, SigLIP's pooled output, which is what
each model's `get_image_features` returns. The image processor comes from the same folder.
"""

from __future__ import annotations

import contextlib
from typing import Any

from beprepared_dagster.models.api import Backend, ItemError
from beprepared_dagster.models.loading import ModelNotFound

CLIP_TYPES = ("clip", "clip_vision_model")
SIGLIP_TYPES = ("siglip", "siglip_vision_model")


@contextlib.contextmanager
def _quiet_transformers() -> Any:
    """Loading the vision tower alone lists the text tower's weights as unexpected: expected here."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(before)


def load_vision_tower(folder: Any, device: str, dtype: str) -> tuple[Any, Any, str]:
    """(model, image processor, "clip" | "siglip") for a CLIP or SigLIP folder.

    Raises:
        ModelNotFound: a folder that is not a CLIP or SigLIP checkpoint, naming what it is or lacks.
    """
    import transformers as T

    from beprepared_dagster.models.devices import torch_dtype

    if not (folder / "config.json").is_file():
        raise ModelNotFound(f"{folder} is not a CLIP or SigLIP model folder: missing config.json")
    if not any(folder.glob("preprocessor_config.json")):
        raise ModelNotFound(
            f"{folder} is not a CLIP or SigLIP model folder: missing preprocessor_config.json"
        )
    config = T.AutoConfig.from_pretrained(folder)
    kind = config.model_type
    with _quiet_transformers():
        if kind in CLIP_TYPES:
            vision = config.vision_config if kind == "clip" else config
            if kind == "clip":  # the projection size lives on the full config
                vision.projection_dim = config.projection_dim
            model = T.CLIPVisionModelWithProjection.from_pretrained(
                folder, config=vision, dtype=torch_dtype(dtype)
            )
            family = "clip"
        elif kind in SIGLIP_TYPES:
            vision = config.vision_config if kind == "siglip" else config
            model = T.SiglipVisionModel.from_pretrained(folder, config=vision, dtype=torch_dtype(dtype))
            family = "siglip"
        else:
            raise ModelNotFound(
                f"{folder} is a {kind!r} checkpoint; ClipEmbed and AestheticScore run CLIP or SigLIP models "
                f"(model_type one of {', '.join(CLIP_TYPES + SIGLIP_TYPES)})"
            )
        processor = T.AutoImageProcessor.from_pretrained(folder)
    return model.to(device).eval(), processor, family


class ClipEmbedBackend(Backend):
    """Results: one L2-normalised float32 vector (numpy) per image."""

    def load(self) -> None:
        folder = self.model.path / (self.model.spec.subfolder or "")
        self.vision, self.processor, self.kind = load_vision_tower(folder, self.device, self.dtype)

    def prepare(self, image: Any, item: Any) -> Any:
        """Resize and normalise on the runtime's decode threads, while the device embeds the previous batch."""
        try:
            return self.processor(images=[image], return_tensors="pt")["pixel_values"][0]
        except Exception as exc:  # an image the processor cannot take fails alone
            return ItemError(f"the image processor refused it: {type(exc).__name__}: {exc}", bad_image=True)

    def embed(self, batch: list[Any]) -> Any:
        """(n, dim) float32 numpy array, L2-normalised, for prepared pixel tensors."""
        import torch

        pixels = torch.stack(batch).to(self.device, dtype=self.vision.dtype)
        with torch.inference_mode():
            out = self.vision(pixel_values=pixels)
            vectors = out.image_embeds if self.kind == "clip" else out.pooler_output
            vectors = torch.nn.functional.normalize(vectors.float(), dim=-1)
        return vectors.cpu().numpy()

    def run(self, batch: list[Any]) -> list[Any]:
        return list(self.embed(batch))

    def close(self) -> None:
        self.vision = None


class AestheticBackend(ClipEmbedBackend):
    """Results: `{"score": float}` per image, the head applied to the normalised CLIP embedding."""

    def load(self) -> None:
        from beprepared_dagster.models.backends.aesthetic_head import load_head

        super().load()
        extra = self.args.get("extra_models") or {}
        self.head = load_head(extra["head"], self.args.get("head_file"))
        config = self.vision.config
        dim = config.projection_dim if self.kind == "clip" else config.hidden_size
        if self.head.in_features != dim:
            raise ModelNotFound(
                f"the aesthetic head takes {self.head.in_features}-d embeddings but {self.model.label} "
                f"makes {dim}-d ones: use the CLIP model the head was trained on"
            )

    def run(self, batch: list[Any]) -> list[Any]:
        return [{"score": float(s)} for s in self.head.score(self.embed(batch))]
