"""The node cache: outcome per (node fingerprint, digest of the properties the node read). Never deleted
when parameters change, so switching a parameter back is free."""

from __future__ import annotations

import json
from typing import Any


def lookup(conn: Any, fingerprint: str, inputs: list[str]) -> dict[str, Any]:
    if not inputs:
        return {}
    rows = conn.execute(
        "SELECT input, value FROM node_cache WHERE fingerprint = ? AND input IN (SELECT unnest(?::VARCHAR[]))",
        [fingerprint, inputs],
    ).fetchall()
    return {r[0]: json.loads(r[1]) for r in rows}


def store(conn: Any, fingerprint: str, values: dict[str, Any]) -> None:
    if not values:
        return
    conn.execute(
        """
        INSERT OR REPLACE INTO node_cache (fingerprint, input, value, created_at)
        SELECT ?, unnest(?::VARCHAR[]), unnest(?::VARCHAR[])::JSON, current_timestamp
        """,
        [fingerprint, list(values), [json.dumps(v, separators=(",", ":")) for v in values.values()]],
    )


def describe(conn: Any, fingerprint: str, node: str, version: int, params: dict) -> None:
    describe_many(conn, [(fingerprint, node, version, params)])


def describe_many(conn: Any, described: list[tuple[str, str, int, dict]]) -> None:
    """Record what each fingerprint stands for (fingerprint, node type, version, parameters), in one
    statement; a fingerprint already described keeps its row."""
    if not described:
        return
    conn.execute(
        """
        INSERT OR IGNORE INTO fingerprints
        SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::INTEGER[]), unnest(?::VARCHAR[])
        """,
        [
            [d[0] for d in described],
            [d[1] for d in described],
            [d[2] for d in described],
            [json.dumps(d[3], sort_keys=True) for d in described],
        ],
    )
