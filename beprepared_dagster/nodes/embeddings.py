"""ClipEmbed: CLIP or SigLIP image embeddings, L2-normalised, stored as typed float arrays.

The vectors live in the workspace's `embeddings` table (DuckDB `FLOAT[]`), keyed by the model that computed
them and the bytes embedded; the image's `target_prop` holds only a small reference to its vector, which
sidecars and galleries leave out. FuzzyDedupe(method="clip"), AestheticScore and the smart nodes read them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

from beprepared_dagster.models.api import ItemError, ResolvedModel
from beprepared_dagster.nodes.base import Image, NodeContext, Outcome
from beprepared_dagster.nodes.model import ModelNode
from beprepared_dagster.store import embeddings

CLIP_MODEL = "openai/clip-vit-large-patch14"
# What a checkpoint folder must hold: weights, their config and the image processor's settings.
CLIP_FILES = ("config.json", "preprocessor_config.json", "*.safetensors")
CLIP_DOWNLOAD = ("config.json", "preprocessor_config.json", "model.safetensors", "*.json")


def check_prop(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value or value.startswith("_"):
        raise ValueError(f"{name} must be a property name not starting with '_', got {value!r}")


class ClipEmbed(ModelNode):
    """CLIP / SigLIP image embeddings of {model} into `{target_prop}` (stored as float arrays).

    Args:
        batch_size: images per device batch (the original's 128).
        target_prop: the property that refers to each image's vector.
        model: a CLIP or SigLIP hub id (`google/siglip-so400m-patch14-384`) or local folder.
        revision: a branch, tag or commit of a hub id.
        devices, dtype: where and how to run (see the model runtime); float32 on the CPU.
    """

    backend: ClassVar[str] = "beprepared_dagster.models.backends.clip:ClipEmbedBackend"
    family: ClassVar[str] = "CLIP/SigLIP"
    default_model: ClassVar[str] = CLIP_MODEL
    required_files: ClassVar[tuple[str, ...]] = CLIP_FILES
    allow_patterns: ClassVar[tuple[str, ...] | None] = CLIP_DOWNLOAD
    default_batch_size: ClassVar[int] = 128
    writes: ClassVar[tuple[str, ...]] = ("{target_prop}",)
    description: ClassVar[str] = "CLIP/SigLIP embeddings of every image ({model}) into `{target_prop}`."

    def __init__(
        self,
        batch_size: int = 128,
        target_prop: str = "clip",
        model: str | None = None,
        revision: str | None = None,
        devices: Sequence[str] | None = None,
        dtype: str | None = None,
    ) -> None:
        check_prop("target_prop", target_prop)
        self._setup_model(model, revision, batch_size, devices, dtype, None)

    def outcome(self, image: Image, result: Any, model: ResolvedModel) -> Outcome:
        if isinstance(result, ItemError):
            outcome = Outcome.reject(f"bad image: {result.reason}")
            outcome.cache = result.bad_image
            return outcome
        objectid = image["objectid"]
        vector = result
        done = Outcome.keep(
            **{self.params["target_prop"]: embeddings.ref(model.label, objectid, len(vector))}
        )
        done.embeddings.append((model.label, objectid, vector))
        return done


def embedding_refs(images: list[Image], prop: str, needed_by: str, ctx: NodeContext) -> Any:
    """The (n, dim) normalised matrix of the `prop` embeddings of `images`.

    Raises:
        ValueError: an image without the embedding, saying which node to add.
    """
    from beprepared_dagster.store.embeddings import MissingEmbedding

    values = []
    for image in images:
        value = image.get(prop)
        if not embeddings.is_ref(value):
            name = os.path.basename(str(image.get("original_path") or image.get("objectid")))
            raise ValueError(
                f"{needed_by} needs the `{prop}` embedding that ClipEmbed stores; {name} has none: add "
                f"ClipEmbed(target_prop={prop!r}) before it"
            )
        values.append(value)
    if ctx.embeddings is None:
        raise ValueError(f"{needed_by} reads stored embeddings: run it through a workflow")
    try:
        return ctx.embeddings.matrix(values)
    except MissingEmbedding as exc:
        raise ValueError(f"{needed_by}: {exc}") from None
