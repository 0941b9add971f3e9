"""AestheticScore: the LAION aesthetic predictor (a linear or MLP head on CLIP ViT-L/14 embeddings).

The original ran `shunk031/aesthetics-predictor-v1-vit-large-patch14` (OpenAI's CLIP ViT-L/14 vision tower
plus LAION's linear head). Here the CLIP model and the head are separate parameters, so the head can be the
v1 linear or a v2 MLP (`sac+logos+ava1-l14-linearMSE.pth`), from a hub id, a folder or a file. When the
workflow already stored embeddings of the same CLIP model (ClipEmbed above), the score comes from those:
no second pass over the pixels, and the CLIP model is not even loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from beprepared_dagster.models import loading
from beprepared_dagster.models.api import ItemError, ModelSpec, ResolvedModel
from beprepared_dagster.nodes.base import Image, NodeContext, Outcome
from beprepared_dagster.nodes.embeddings import CLIP_DOWNLOAD, CLIP_FILES, CLIP_MODEL
from beprepared_dagster.nodes.model import ModelNode
from beprepared_dagster.store import embeddings

HEAD_MODEL = "shunk031/aesthetics-predictor-v1-vit-large-patch14"
HEAD_DOWNLOAD = ("*.json", "*.safetensors", "*.bin", "*.pth")


class AestheticScore(ModelNode):
    """LAION aesthetic score of every image (`aesthetic_score`, about 1–10) from {model} embeddings.

    Args:
        batch_size: images per device batch (the original's 256).
        model: the CLIP model the head was trained on (hub id or folder).
        head: the head: a hub id or folder holding its weights (`predictor.*` v1, `layers.*` v2, or a bare
            linear), or a `.safetensors` / `.pth` file.
        revision, head_revision: branches, tags or commits of the hub ids.
        devices, dtype: where and how to run the CLIP model.
    """

    backend: ClassVar[str] = "beprepared_dagster.models.backends.clip:AestheticBackend"
    family: ClassVar[str] = "CLIP"
    default_model: ClassVar[str] = CLIP_MODEL
    required_files: ClassVar[tuple[str, ...]] = CLIP_FILES
    allow_patterns: ClassVar[tuple[str, ...] | None] = CLIP_DOWNLOAD
    default_batch_size: ClassVar[int] = 256
    writes: ClassVar[tuple[str, ...]] = ("aesthetic_score",)
    description: ClassVar[str] = "LAION aesthetic score of every image (head {head} on {model})."

    def __init__(
        self,
        batch_size: int = 256,
        model: str | None = None,
        head: str = HEAD_MODEL,
        revision: str | None = None,
        head_revision: str | None = None,
        devices: Sequence[str] | None = None,
        dtype: str | None = None,
    ) -> None:
        if not isinstance(head, str) or not head.strip():
            raise ValueError(f"head must be a hub id, a folder or a weights file, got {head!r}")
        self._setup_model(model, revision, batch_size, devices, dtype, None)
        self._head: Any = None

    def _head_location(self) -> tuple[str, str | None]:
        """(hub id or folder, file name or None): a file is given as its folder plus its name."""
        path = Path(self.params["head"]).expanduser()
        if path.is_file():
            return str(path.resolve().parent), path.name
        return self.params["head"], None

    def extra_specs(self) -> dict[str, ModelSpec]:
        location, file = self._head_location()
        return {
            "head": ModelSpec(
                model=location,
                revision=self.params["head_revision"],
                family="aesthetic head",
                required_files=(file,) if file else (),
                allow_patterns=HEAD_DOWNLOAD,
            )
        }

    def backend_args(self) -> dict[str, Any]:
        return {"head_file": self._head_location()[1]}

    def outcome(self, image: Image, result: Any, model: ResolvedModel) -> Outcome:
        if isinstance(result, ItemError):
            outcome = Outcome.reject(f"bad image: {result.reason}")
            outcome.cache = result.bad_image
            return outcome
        return Outcome.keep(aesthetic_score=round(float(result["score"]), 6))

    def without_model(self, images: list[Image], ctx: NodeContext) -> list[Outcome | None]:
        """Scores from stored embeddings of this node's CLIP model (ClipEmbed above with the same model)."""
        found: list[Outcome | None] = [None] * len(images)
        spaces = {ref[embeddings.REF_KEY] for image in images for ref in embeddings.refs_in(image).values()}
        # Only a model that may have made them is resolved (a hub id is then in the cache: nothing downloads).
        if ctx.embeddings is None or not any(
            sp == self.model or sp.startswith(f"{self.model}@") for sp in spaces
        ):
            return found
        try:
            space = loading.resolve(self.model_spec()).label
        except loading.ModelNotFound:
            return found  # not on disk: nothing stored can be from it either
        usable = [
            (k, ref)
            for k, image in enumerate(images)
            for ref in embeddings.refs_in(image).values()
            if ref[embeddings.REF_KEY] == space
        ]
        usable = list({k: (k, ref) for k, ref in usable}.values())
        if not usable:
            return found
        matrix = ctx.embeddings.matrix([ref for _, ref in usable])
        scores = self._load_head().score(matrix)
        for (k, _), score in zip(usable, scores, strict=True):
            found[k] = Outcome.keep(aesthetic_score=round(float(score), 6))
        return found

    def _load_head(self) -> Any:
        if self._head is None:
            from beprepared_dagster.models.backends.aesthetic_head import load_head

            resolved = loading.resolve(self.extra_specs()["head"])
            self._head = load_head(resolved.path, self._head_location()[1])
        return self._head
