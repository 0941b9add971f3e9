"""ExactDedupe and FuzzyDedupe.

FuzzyDedupe clusters by perceptual hash (no model; `imagehash`) or by a `clip` embedding property. Unlike
the original's single-linkage union-find, where A≈B and B≈C merge A and C however different they are, a
cluster here is built around its largest image: images are visited largest first, and each one not yet
claimed keeps itself and claims every unclaimed image similar to *it*. So every dropped image is a near
duplicate of the image kept in its place. The dataset order is left alone (the original re-sorted by id).
"""

from __future__ import annotations

import html
import math
import os
from typing import Any, ClassVar

from beprepared_dagster.nodes import pixels
from beprepared_dagster.nodes.base import Image, NodeContext, Outcome, SetNode
from beprepared_dagster.nodes.setlevel import ORDER_PROP, dataset_order

HASH_METHODS = ("phash", "dhash")
DEFAULT_THRESHOLDS = {"phash": 0.9, "dhash": 0.9, "clip": 0.95}
HASH_BITS = 64
# Pairwise comparisons per block: bounds the temporary arrays to a few tens of MB at any dataset size.
_BLOCK_ELEMENTS = 4_000_000


def label(image: Image) -> str:
    path = image.get("original_path")
    return os.path.basename(path) if path else str(image.get("image_id") or image.get("objectid"))[:12]


class ExactDedupe(SetNode):
    """Drop every image whose bytes (object id) already appeared earlier in dataset order.

    Load already merges byte-identical files into one image; this catches the copies Concat branches bring
    together and transforms that produce identical bytes from different sources.
    """

    reads: ClassVar[tuple[str, ...]] = ("objectid", "original_path", ORDER_PROP)
    description: ClassVar[str] = "Images without byte-identical repeats."
    writes: ClassVar[tuple[str, ...]] = ()

    def decide(self, images: list[Image], ctx: NodeContext) -> list[Outcome]:
        first: dict[str, int] = {}
        outcomes = [Outcome.keep() for _ in images]
        for i in dataset_order(images):
            seen = first.setdefault(images[i].objectid, i)
            if seen != i:
                outcomes[i] = Outcome.reject(f"duplicate: same bytes as {label(images[seen])}")
        return outcomes


class FuzzyDedupe(SetNode):
    """Drop near-duplicates, keeping the largest image (by pixel area) of each group.

    Args:
        threshold: similarity from 0 to 1 above which two images are duplicates: for hashes, the share of
            the 64 bits that agree (0.9 lets 6 differ: resized and re-encoded copies); for clip, cosine.
            Default 0.9 for hashes, 0.95 for clip.
        method: "phash" (DCT perceptual hash; no model), "dhash" (gradient hash) or "clip" (cosine of the
            `clip` property, which ClipEmbed computes).
        debug_html: file name of a page showing every group, written into the stage's debug folder;
            None or "" for none.
    """

    fingerprint_exclude: ClassVar[tuple[str, ...]] = ("debug_html",)
    description: ClassVar[str] = "Images without near-duplicates ({method}, threshold {threshold})."
    writes: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        threshold: float | None = None,
        method: str = "phash",
        debug_html: str | None = "fuzzy_dedupe.html",
    ) -> None:
        if method not in DEFAULT_THRESHOLDS:
            raise ValueError(f"method {method!r} is not one of {', '.join(DEFAULT_THRESHOLDS)}")
        if threshold is None:
            threshold = DEFAULT_THRESHOLDS[method]
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold <= 1:
            raise ValueError(f"threshold must be a similarity in (0, 1], got {threshold!r}")
        if debug_html and (not isinstance(debug_html, str) or os.path.basename(debug_html) != debug_html):
            raise ValueError(f"debug_html must be a file name (no folders), got {debug_html!r}")
        self.params["threshold"] = float(threshold)

    @property
    def reads(self) -> tuple[str, ...]:  # type: ignore[override]
        extra = ("clip",) if self.params["method"] == "clip" else ()
        return ("objectid", "width", "height", "original_path", ORDER_PROP, *extra)

    @property
    def max_distance(self) -> int:
        """Differing bits allowed between two hashes (the threshold, in bits)."""
        return math.floor((1 - self.params["threshold"]) * HASH_BITS + 1e-9)

    def features_key(self) -> str | None:
        method = self.params["method"]
        return f"{method}:v1:bits={HASH_BITS}" if method in HASH_METHODS else None

    def features(self, images: list[Image], ctx: NodeContext) -> list[dict[str, Any]]:
        import imagehash

        hasher = imagehash.phash if self.params["method"] == "phash" else imagehash.dhash
        result = []
        for image in images:
            # Hashes look at 32×32 pixels: a JPEG decodes at the smallest DCT scale of at least 128×128. At
            # 64×64, small low-quality copies drifted by up to 10 bits; at 128 hashes equal a full decode's.
            decoded, _ = pixels.open_upright(ctx.objects.read(image.objectid), draft_size=(128, 128))
            result.append({self.params["method"]: str(hasher(decoded))})
        return result

    def decide(self, images: list[Image], ctx: NodeContext) -> list[Outcome]:
        method = self.params["method"]
        todo = [k for k, image in enumerate(images) if method in HASH_METHODS and method not in image]
        if todo:  # called without the executor's feature cache (tests, notebooks)
            images = list(images)
            for k, values in zip(todo, self.features([images[k] for k in todo], ctx), strict=True):
                images[k] = images[k].with_props(**values)
        pairs = self._pairs(images, ctx)
        leader, similarity = self._cluster(images, pairs)
        self._report(images, leader, similarity, ctx)
        return [
            Outcome.keep()
            if lead == i
            else Outcome.reject(
                f"near-duplicate: of {label(images[lead])} ({method} similarity {similarity[i]:.3f})"
            )
            for i, lead in enumerate(leader)
        ]

    def _cluster(self, images: list[Image], pairs: dict[int, list[tuple[int, float]]]) -> tuple[list, dict]:
        """Leader clustering, largest first (ties: dataset order)."""
        order = dataset_order(images)
        by_size = sorted(order, key=lambda i: -(images[i].width * images[i].height))
        leader: list[int | None] = [None] * len(images)
        similarity: dict[int, float] = {}
        for i in by_size:
            if leader[i] is not None:
                continue
            leader[i] = i
            for j, sim in pairs.get(i, ()):
                if leader[j] is None:
                    leader[j], similarity[j] = i, sim
        return leader, similarity

    def _pairs(self, images: list[Image], ctx: NodeContext) -> dict[int, list[tuple[int, float]]]:
        """Every pair at or above the threshold, both ways: i → [(j, similarity)]. Compared in blocks of
        rows against the columns from the block's first row on (the upper triangle)."""
        import numpy as np

        if self.params["method"] == "clip":
            data, block = _embeddings(images, ctx), self._clip_block
        else:
            hashes = [int(image[self.params["method"]], 16) for image in images]
            data, block = np.array(hashes, dtype=np.uint64), self._hash_block
        pairs: dict[int, list[tuple[int, float]]] = {}
        step = max(1, _BLOCK_ELEMENTS // max(1, len(images)))
        for start in range(0, len(images), step):
            rows, cols, sims = block(data, start, start + step)
            for a, b, sim in zip(rows.tolist(), cols.tolist(), sims.tolist(), strict=True):
                i, j = start + a, start + b
                if j > i:
                    pairs.setdefault(i, []).append((j, sim))
                    pairs.setdefault(j, []).append((i, sim))
        return pairs

    def _hash_block(self, hashes: Any, start: int, stop: int) -> tuple[Any, Any, Any]:
        import numpy as np

        distance = np.bitwise_count(hashes[start:stop, None] ^ hashes[None, start:])
        rows, cols = np.nonzero(distance <= self.max_distance)
        return rows, cols, 1 - distance[rows, cols] / HASH_BITS

    def _clip_block(self, vectors: Any, start: int, stop: int) -> tuple[Any, Any, Any]:
        import numpy as np

        cosine = vectors[start:stop] @ vectors[start:].T
        rows, cols = np.nonzero(cosine >= self.params["threshold"] - 1e-6)  # float32 rounding at 1.0
        return rows, cols, cosine[rows, cols]

    def _report(
        self, images: list[Image], leader: list, similarity: dict[int, float], ctx: NodeContext
    ) -> None:
        dropped = sum(1 for i, lead in enumerate(leader) if lead != i)
        groups: dict[int, list[int]] = {}
        for i, lead in enumerate(leader):
            if lead != i:
                groups.setdefault(lead, []).append(i)
        path = None
        if self.params["debug_html"] and ctx.debug_dir is not None:
            path = self._write_page(ctx, images, groups, similarity)
        where = f"; clusters: {path}" if path else ""
        ctx.log.info(f"FuzzyDedupe: {dropped} near-duplicate(s) of {len(groups)} image(s) dropped{where}")

    def _write_page(
        self,
        ctx: NodeContext,
        images: list[Image],
        groups: dict[int, list[int]],
        similarity: dict[int, float],
    ) -> Any:
        """A static page of every group (kept image first), linking the images in the object store."""
        folder = ctx.debug_dir
        folder.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
        path = folder / self.params["debug_html"]  # type: ignore[operator]

        def figure(i: int, note: str) -> str:
            image = images[i]
            src = os.path.relpath(ctx.objects.path(image.objectid), folder)
            caption = f"{label(image)} · {image.width}×{image.height} · {note}"
            return (
                f'<figure><img loading="lazy" src="{html.escape(src)}" alt="">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )

        ordered = sorted(groups.items(), key=lambda g: (-len(g[1]), g[0]))
        sections = [
            "<section>"
            + figure(lead, "kept")
            + "".join(figure(i, f"similarity {similarity[i]:.3f}") for i in members)
            + "</section>"
            for lead, members in ordered
        ]
        settings = f"method {self.params['method']}, threshold {self.params['threshold']}"
        path.write_text(
            f"<!doctype html><meta charset=utf-8><title>FuzzyDedupe clusters</title><style>{_CSS}</style>"
            f"<h1>FuzzyDedupe: {len(ordered)} group(s) of near-duplicates</h1><p>{html.escape(settings)}; "
            f"{len(images)} image(s) compared.</p>{''.join(sections) or '<p>No near-duplicates.</p>'}",
            encoding="utf-8",
        )
        return path


_CSS = (
    "body{font-family:sans-serif;background:#111;color:#ddd}section{display:flex;flex-wrap:wrap;gap:8px;"
    "border-top:1px solid #444;padding:8px 0}figure{margin:0;width:220px}img{max-width:220px;max-height:220px}"
    "figure:first-child figcaption{color:#7d7}figcaption{font-size:12px;word-break:break-all}"
)


def _embeddings(images: list[Image], ctx: NodeContext) -> Any:
    """The normalised `clip` vectors (ClipEmbed's stored embeddings; a plain list of floats also works)."""
    import numpy as np

    from beprepared_dagster.nodes.embeddings import embedding_refs
    from beprepared_dagster.store.embeddings import is_ref

    if not images:
        return np.zeros((0, 1), dtype=np.float32)
    if any(is_ref(image.get("clip")) or image.get("clip") is None for image in images):
        return embedding_refs(images, "clip", "FuzzyDedupe(method='clip')", ctx)
    vectors = [np.asarray(image["clip"], dtype=np.float32).ravel() for image in images]
    if len({v.shape for v in vectors}) > 1:
        raise ValueError("FuzzyDedupe(method='clip'): the `clip` embeddings have different lengths")
    matrix = np.stack(vectors)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)
