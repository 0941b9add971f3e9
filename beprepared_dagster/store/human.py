"""DuckDB side of human stages: the `labels` mirror of the journal (what `db list` and SQL users see) and
`human_applied`, the journal entry each human stage's row was computed from (how a re-label is noticed)."""

from __future__ import annotations

import json
from typing import Any

from beprepared_dagster.store.labels import Label


def mirror_labels(conn: Any, labels: list[Label]) -> None:
    """Upsert the latest journal entries into `labels` (value NULL for an undone label)."""
    if not labels:
        return
    conn.execute(
        """
        INSERT OR REPLACE INTO labels
        SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[])::JSON,
               unnest(?::BIGINT[]), to_timestamp(unnest(?::DOUBLE[]))::TIMESTAMP, unnest(?::VARCHAR[])
        """,
        [
            [lb.domain for lb in labels],
            [lb.kind for lb in labels],
            [lb.image_id for lb in labels],
            [None if lb.value is None else json.dumps(lb.value, sort_keys=True) for lb in labels],
            [lb.id for lb in labels],
            [lb.ts for lb in labels],
            [lb.labeler for lb in labels],
        ],
    )


def record_applied(conn: Any, workflow: str, stage: str, applied: dict[str, int]) -> None:
    if not applied:
        return
    conn.execute(
        """
        INSERT OR REPLACE INTO human_applied
        SELECT ?, ?, unnest(?::VARCHAR[]), unnest(?::BIGINT[])
        """,
        [workflow, stage, list(applied), list(applied.values())],
    )


def applied_ids(conn: Any, workflow: str, stage: str) -> dict[str, int]:
    rows = conn.execute(
        "SELECT image_id, journal_id FROM human_applied WHERE workflow = ? AND stage = ?", [workflow, stage]
    ).fetchall()
    return dict(rows)
