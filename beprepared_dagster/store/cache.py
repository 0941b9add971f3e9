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
    conn.execute(
        "INSERT OR IGNORE INTO fingerprints VALUES (?, ?, ?, ?)",
        [fingerprint, node, version, json.dumps(params, sort_keys=True)],
    )
