"""Image embeddings as typed float arrays (`embeddings`: space, objectid → FLOAT[]), not JSON text.

A node that embeds images (ClipEmbed) stores each vector here, keyed by the model that computed it (its
`space`, the resolved model's `<id>@<commit>` or folder) and the bytes it saw, and sets a small reference
as the image's property: `{"embedding": space, "objectid": ..., "dim": 768}`. Stage rows, the node cache and
sidecars carry only that reference (sidecars leave it out); readers (FuzzyDedupe, AestheticScore, the smart
nodes) fetch the vectors in bulk through `EmbeddingReader`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from beprepared_dagster.errors import BeprepareError

if TYPE_CHECKING:
    from beprepared_dagster.store.db import Database

REF_KEY = "embedding"
_CHUNK = 4096


class MissingEmbedding(BeprepareError):
    """An image refers to an embedding that is not stored (or has no reference at all)."""


def ref(space: str, objectid: str, dim: int) -> dict[str, Any]:
    """The property value that stands for a stored vector."""
    return {REF_KEY: space, "objectid": objectid, "dim": int(dim)}


def is_ref(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get(REF_KEY), str) and "objectid" in value


def refs_in(props: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every embedding reference among an image's properties, by property name."""
    return {name: value for name, value in props.items() if is_ref(value)}


def put(conn: Any, space: str, vectors: Mapping[str, Any]) -> None:
    """Store vectors (objectid → 1-d float array) of one space, replacing earlier ones."""
    if not vectors:
        return
    import numpy as np
    import pyarrow as pa

    ids = list(vectors)
    rows = [np.asarray(vectors[i], dtype=np.float32).ravel() for i in ids]
    offsets = np.zeros(len(rows) + 1, dtype=np.int32)
    np.cumsum([len(r) for r in rows], out=offsets[1:])
    column = pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.concatenate(rows)))
    table = pa.table({"objectid": pa.array(ids, pa.string()), "vector": column})
    conn.register("_embeddings_in", table)
    try:
        conn.execute(
            "INSERT OR REPLACE INTO embeddings (space, objectid, vector, created_at) "
            "SELECT ?, objectid, vector, current_timestamp FROM _embeddings_in",
            [space],
        )
    finally:
        conn.unregister("_embeddings_in")


def get(conn: Any, space: str, objectids: Iterable[str]) -> dict[str, Any]:
    """Stored vectors of one space (objectid → float32 array); missing ones are left out."""
    import numpy as np

    wanted = list(dict.fromkeys(objectids))
    found: dict[str, Any] = {}
    for start in range(0, len(wanted), _CHUNK):
        result = conn.sql(
            "SELECT objectid, vector FROM embeddings WHERE space = ? "
            "AND objectid IN (SELECT unnest(?::VARCHAR[]))",
            params=[space, wanted[start : start + _CHUNK]],
        )
        table = result.to_arrow_table() if hasattr(result, "to_arrow_table") else result.arrow()
        vectors = table.column("vector").combine_chunks()
        flat = vectors.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        offsets = vectors.offsets.to_numpy()
        for k, objectid in enumerate(table.column("objectid").to_pylist()):
            found[objectid] = flat[offsets[k] : offsets[k + 1]]
    return found


class EmbeddingReader:
    """Bulk reads for nodes (one short transaction per call)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def matrix(self, values: list[Any], what: str = "image") -> Any:
        """An (n, dim) float32 matrix, one row per reference in `values`, L2-normalised.

        Raises:
            MissingEmbedding: a value that is not a reference, or a vector that is not stored (naming which).
        """
        import numpy as np

        for k, value in enumerate(values):
            if not is_ref(value):
                raise MissingEmbedding(f"{what} {k} has no embedding reference (got {value!r:.80})")
        by_space: dict[str, list[str]] = {}
        for value in values:
            by_space.setdefault(value[REF_KEY], []).append(value["objectid"])
        found: dict[tuple[str, str], Any] = {}
        with self.db.connect() as conn:
            for space, ids in by_space.items():
                found.update({(space, o): v for o, v in get(conn, space, ids).items()})
        rows = []
        for value in values:
            vector = found.get((value[REF_KEY], value["objectid"]))
            if vector is None:
                raise MissingEmbedding(
                    f"the {value[REF_KEY]} embedding of object {value['objectid'][:12]}… is not stored; "
                    "re-run the ClipEmbed stage that computed it"
                )
            rows.append(vector)
        if len({r.shape for r in rows}) > 1:
            raise MissingEmbedding("the embeddings have different lengths (mixed models?)")
        matrix = np.stack(rows) if rows else np.zeros((0, 1), dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.where(norms == 0, 1, norms)
