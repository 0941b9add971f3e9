"""Partition insertion order, mirrored in DuckDB so the labeling app (which has no Dagster instance) shows
images in the order runs cover them, and labeled sets stay contiguous ranges."""

from __future__ import annotations

from typing import Any


def append_order(conn: Any, workflow: str, keys: list[str]) -> int:
    """Give the keys that have no ordinal yet the next ordinals, in the given order. Returns how many."""
    if not keys:
        return 0
    known = {
        r[0]
        for r in conn.execute(
            "SELECT image_id FROM image_order WHERE workflow = ? AND image_id IN (SELECT unnest(?::VARCHAR[]))",
            [workflow, keys],
        ).fetchall()
    }
    fresh = [k for k in dict.fromkeys(keys) if k not in known]
    if not fresh:
        return 0
    start = conn.execute(
        "SELECT coalesce(max(ordinal), -1) + 1 FROM image_order WHERE workflow = ?", [workflow]
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO image_order SELECT ?, unnest(?::VARCHAR[]), unnest(?::BIGINT[])",
        [workflow, fresh, list(range(start, start + len(fresh)))],
    )
    return len(fresh)


def ordered_ids(conn: Any, workflow: str) -> list[str]:
    rows = conn.execute(
        "SELECT image_id FROM image_order WHERE workflow = ? ORDER BY ordinal", [workflow]
    ).fetchall()
    return [r[0] for r in rows]
