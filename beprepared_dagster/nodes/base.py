"""Node categories. A node is a small Dagster-free class with one method to implement; the stage executor
does batching, caching, counting and error isolation for all of them.

| category       | implement                 | result                                   |
|----------------|---------------------------|------------------------------------------|
| FilterNode     | `reject_reason(image)`    | keep, or reject with a reason            |
| PropertyNode   | `compute(image)`          | properties to set                        |
| TransformNode  | `transform(image, ctx)`   | new bytes (object id) and their props    |
| ImageNode      | `process(images, ctx)`    | any of the above, for a batch            |
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from beprepared_dagster.errors import BadImage
from beprepared_dagster.workflow import Node

if TYPE_CHECKING:
    from beprepared_dagster.store.embeddings import EmbeddingReader
    from beprepared_dagster.store.objects import ObjectStore


class Image(Mapping[str, Any]):
    """An image as a node sees it: read-only properties, by attribute or by key.

    `image.width`, `image["width"]`, `image.get("caption")`. An unknown attribute raises AttributeError
    naming the properties that exist (the original silently returned "no value").
    """

    __slots__ = ("_props",)

    def __init__(self, props: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_props", dict(props))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._props[name]
        except KeyError:
            raise AttributeError(
                f"image has no property {name!r}; it has {sorted(self._props)} (use image.get({name!r}) "
                "for an optional one)"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("images are read-only inside nodes: return the properties to set instead")

    def __getitem__(self, key: str) -> Any:
        return self._props[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._props)

    def __len__(self) -> int:
        return len(self._props)

    def __repr__(self) -> str:
        return f"Image({self._props!r})"

    @property
    def aspect_ratio(self) -> float:
        return self._props["width"] / self._props["height"]

    def with_props(self, **changes: Any) -> Image:
        return Image({**self._props, **changes})


@dataclass
class Outcome:
    """What a node decided for one image. JSON-serializable (it is what the cache stores).

    `cache=False` marks an outcome that must not be cached and is retried on the next run (a model's empty
    or refused output, a transient failure); it is not part of the stored value."""

    kept: bool = True
    reason: str | None = None
    set: dict[str, Any] = field(default_factory=dict)
    cache: bool = field(default=True, compare=False)
    # Vectors to store in the embeddings table as (space, objectid, vector), written in the same transaction
    # as the row; `set` holds only their references (store/embeddings.py). Not part of the cached value.
    embeddings: list[tuple[str, str, Any]] = field(default_factory=list, compare=False)

    @classmethod
    def keep(cls, **props: Any) -> Outcome:
        return cls(True, None, props)

    @classmethod
    def reject(cls, reason: str) -> Outcome:
        return cls(False, reason, {})

    def to_json(self) -> dict[str, Any]:
        return {"kept": self.kept, "reason": self.reason, "set": self.set}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Outcome:
        return cls(bool(value["kept"]), value.get("reason"), dict(value.get("set") or {}))


@dataclass
class NodeContext:
    """What a node may use besides its images: the object store, a logger, a folder for debug output
    (e.g. FuzzyDedupe's cluster page) that the executor creates per stage, and the stored embeddings."""

    objects: ObjectStore
    log: logging.Logger | Any
    debug_dir: Path | None = None
    embeddings: EmbeddingReader | None = None  # stored image embeddings (ClipEmbed's), read in bulk


class SourceNode(Node):
    """Produces images from outside the workspace (Load)."""

    max_inputs: ClassVar[int | None] = 0


class SinkNode(Node):
    """Consumes the final images (Save); becomes an unpartitioned asset."""


class MergeNode(Node):
    """Merges several inputs image by image (Concat)."""

    max_inputs: ClassVar[int | None] = None


class ImageNode(Node):
    """A per-image node: its outcome for an image depends only on the properties in `reads` (all properties
    when None) and its parameters, which is exactly what the cache key covers.

    Attributes:
        reads: property names the result depends on; None means every property.
        batch_size: images handed to `process` at once (and written to the store per batch).
        properties_only: `process` only looks at properties, in microseconds per image (no pixels, files,
            models or user code): the executor computes it inside the transaction that read its inputs.
    """

    reads: ClassVar[tuple[str, ...] | None] = None
    batch_size: ClassVar[int] = 1024
    properties_only: ClassVar[bool] = False

    def process(self, images: list[Image], ctx: NodeContext) -> list[Outcome]:
        return [self.process_one(image, ctx) for image in images]

    def process_one(self, image: Image, ctx: NodeContext) -> Outcome:
        raise NotImplementedError(f"{type(self).__name__} implements neither process nor process_one")


class FilterNode(ImageNode):
    """Keeps an image unless `reject_reason` returns a reason."""

    def reject_reason(self, image: Image) -> str | None:
        raise NotImplementedError

    def process_one(self, image: Image, ctx: NodeContext) -> Outcome:
        reason = self.reject_reason(image)
        return Outcome.reject(reason) if reason else Outcome.keep()


class PropertyNode(ImageNode):
    """Sets the properties `compute` returns."""

    def compute(self, image: Image) -> dict[str, Any]:
        raise NotImplementedError

    def process_one(self, image: Image, ctx: NodeContext) -> Outcome:
        return Outcome.keep(**self.compute(image))


class TransformNode(ImageNode):
    """Derives new bytes: `transform` stores them in `ctx.objects` and returns the new `objectid`, `format`,
    `ext`, `width` and `height`. The partition (image identity) never changes.

    A batch's transforms run on every core (`cpu_pool`): Pillow releases the GIL while it decodes, resamples
    and encodes, so threads scale like processes without copying pixels between them. A transform must be
    thread-safe (the object store is); set `parallel = False` when it is not."""

    batch_size: ClassVar[int] = 64
    parallel: ClassVar[bool] = True

    def transform(self, image: Image, ctx: NodeContext) -> dict[str, Any]:
        raise NotImplementedError

    def process(self, images: list[Image], ctx: NodeContext) -> list[Outcome]:
        if not self.parallel or len(images) < 2:
            return super().process(images, ctx)

        def one(image: Image) -> Outcome:
            try:
                return self.process_one(image, ctx)
            except BadImage as exc:  # as the executor records it for one image; the others go on
                return Outcome.reject(f"bad image: {exc}")

        return list(cpu_pool().map(one, images))

    def process_one(self, image: Image, ctx: NodeContext) -> Outcome:
        return Outcome.keep(**self.transform(image, ctx))


_POOL: Any = None
_POOL_LOCK = threading.Lock()


def cpu_pool() -> Any:
    """The process-wide thread pool for CPU-bound pixel work, one thread per core."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            from concurrent.futures import ThreadPoolExecutor

            _POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="pixels")
        return _POOL


class SetNode(Node):
    """A set-level node (Take, Sorted, Shuffle, dedupe): decides over every upstream image at once.

    The executor hands `decide` every kept upstream image of the workflow, in partition insertion order, and
    re-decides whenever any upstream row changed. Randomness must be seeded (the decision is cached by the
    digest of all inputs). An image whose outcome did not change keeps its row, so nothing below it reruns.

    Attributes:
        reads: property names the decision depends on; None means every property.
    """

    reads: ClassVar[tuple[str, ...] | None] = None

    def decide(self, images: list[Image], ctx: NodeContext) -> list[Outcome]:
        """One outcome per image, aligned with `images` (each image has `image_id`)."""
        raise NotImplementedError

    def features_key(self) -> str | None:
        """When not None, `features` is called for images whose features are not cached yet; the values are
        cached per (this key, objectid) and merged into the images `decide` sees. The key must change
        whenever the features would (e.g. "phash:v1:hash_size=8")."""
        return None

    def features(self, images: list[Image], ctx: NodeContext) -> list[dict[str, Any]]:
        """Per-image values `decide` needs that are expensive to compute (perceptual hashes, embeddings)."""
        return [{} for _ in images]


class HumanNode(Node):
    """A human stage (HumanFilter, HumanTag, HumanCaption): its outcome comes from labels a person gave in
    the labeling app, keyed by image identity + `domain` and shared by every stage of that domain.

    Args:
        domain: the label domain: stages of one domain share labels, another domain labels afresh.
        skip_ui: pass images on without waiting for a person (labeled ones get their label).

    Attributes:
        kind: the label kind ("filter", "tag", "caption") stored in the journal.
    """

    kind: ClassVar[str] = ""
    fingerprint_exclude: ClassVar[tuple[str, ...]] = ("skip_ui",)

    def label_key(self) -> tuple[str, str]:
        return self.params["domain"], self.kind

    def is_labeled(self, label: Mapping[str, Any] | None) -> bool:
        """Whether `label` (the latest journal value, or None) counts as done for this stage."""
        return label is not None

    def outcome(self, image: Image, label: Mapping[str, Any] | None) -> Outcome | None:
        """The outcome for a kept upstream image; None when it still waits for a person."""
        raise NotImplementedError
