"""Run a workflow's stages through the executor (no Dagster) and read what they stored."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from beprepared_dagster.nodes.base import SinkNode
from beprepared_dagster.orchestration.discovery import discover
from beprepared_dagster.orchestration.executor import StageExecutor, StageReport
from beprepared_dagster.store import WorkspaceStore
from beprepared_dagster.store.stages import Row, read_rows
from beprepared_dagster.workflow import Workflow

LOG = logging.getLogger("remote-stage-test")


def run_stages(workflow: Workflow, ws: Path) -> dict[str, StageReport]:
    """Every stage above the Save, in order, over every image of the Load folder."""
    store = WorkspaceStore(ws)
    keys = discover(store, workflow, set(), LOG).new_keys
    if not keys:  # already discovered: every known image
        with store.db.connect() as conn:
            keys = [k for (k,) in conn.execute("SELECT DISTINCT image_id FROM stage_rows").fetchall()]
    executor = StageExecutor(store, workflow, LOG)
    return {s.name: executor.run(s, keys) for s in workflow.stages if not isinstance(s.node, SinkNode)}


def stored(workflow: Workflow, ws: Path, stage: str) -> dict[str, Row]:
    """The first row per image of a stage, keyed by the image's file name."""
    store = WorkspaceStore(ws)
    with store.db.connect() as conn:
        keys = [k for (k,) in conn.execute("SELECT DISTINCT image_id FROM stage_rows").fetchall()]
        rows = read_rows(conn, workflow.name, stage, keys)
    return {Path(r[0].props["original_path"]).name: r[0] for r in rows.values() if r}


def store_text(ws: Path) -> str:
    """Every table of the workspace's DuckDB file as text (to check that a key never got there)."""
    store = WorkspaceStore(ws)
    parts: list[Any] = []
    with store.db.connect() as conn:
        tables = [t for (t,) in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        for table in tables:
            parts.append(conn.execute(f'SELECT * FROM "{table}"').fetchall())
    return repr(parts)
