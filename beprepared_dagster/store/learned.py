"""Models learned from labels (SmartHumanFilter, SmartHumanTag): weights as safetensors bytes in the object
store, indexed in `learned_models` by a key over the node, its hyperparameters and the labels it saw; and
`stage_models`, which model each smart stage last decided with and its summary (for the labeling tab)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from beprepared_dagster.store.db import Database
    from beprepared_dagster.store.objects import ObjectStore


class LearnedModels:
    """Find or keep a trained model by key (one short transaction per call)."""

    def __init__(self, db: Database, objects: ObjectStore) -> None:
        self.db, self.objects = db, objects

    def get(self, key: str) -> tuple[bytes, dict[str, Any]] | None:
        with self.db.connect() as conn:
            row = conn.execute("SELECT objectid, metrics FROM learned_models WHERE key = ?", [key]).fetchone()
        if row is None or not self.objects.has(row[0]):
            return None
        return self.objects.read(row[0]), json.loads(row[1])

    def put(self, key: str, node: str, domain: str | None, weights: bytes, metrics: dict[str, Any]) -> str:
        object_id = self.objects.put_bytes(weights)
        with self.db.connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO learned_models (key, node, domain, objectid, metrics, created_at) "
                "VALUES (?, ?, ?, ?, ?::JSON, current_timestamp)",
                [key, node, domain, object_id, json.dumps(metrics, sort_keys=True)],
            )
        return object_id


def record_stage(conn: Any, workflow: str, stage: str, key: str | None, summary: dict[str, Any]) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO stage_models (workflow, stage, key, summary, updated_at) "
        "VALUES (?, ?, ?, ?::JSON, current_timestamp)",
        [workflow, stage, key, json.dumps(summary, sort_keys=True)],
    )


def stage_summary(conn: Any, workflow: str, stage: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT summary FROM stage_models WHERE workflow = ? AND stage = ?", [workflow, stage]
    ).fetchone()
    return json.loads(row[0]) if row else None
