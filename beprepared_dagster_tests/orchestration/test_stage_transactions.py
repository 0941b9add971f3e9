"""How many times a stage opens the workspace database (each attaches the file and checkpoints it when it ends):
a node working on properties alone (`ImageNode.properties_only`) is read, computed and stored in one
transaction per window; any other per-image node reads in one and stores in another, so nothing slow (pixels,
models, user code) ever runs while the file is held. Both store the same rows and use the cache alike.

Real DuckDB file, real Dagster instance for the partitions; the executor is driven directly."""

from __future__ import annotations

import logging

import pytest

from beprepared_dagster import Filter, FilterBySize, Load, SetCaption, Workflow
from beprepared_dagster.orchestration.executor import StageExecutor
from beprepared_dagster.orchestration.instance import open_instance
from beprepared_dagster.store import WorkspaceStore, stages
from beprepared_dagster.store.db import Database


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    counted: list[int] = []
    real = Database._open

    def counting(self, lock_timeout=None):
        counted.append(1)
        return real(self, lock_timeout)

    monkeypatch.setattr(Database, "_open", counting)
    return counted


@pytest.mark.parametrize(
    ("stage", "node", "expected_opens", "kept"),
    [
        ("filter_by_size", FilterBySize(min_edge=512), 1, 4),
        ("set_caption", SetCaption("ohwx"), 1, 6),
        ("filter", Filter(lambda image: image.width >= 512), 2, 4),  # user code: never inside a transaction
    ],
)
def test_a_properties_only_stage_takes_one_database_access(
    photos, workspace_dir, opens, stage, node, expected_opens, kept
):
    workflow = Workflow("dogs", Load(photos) >> node, workspace=workspace_dir)
    workflow.run()
    store = WorkspaceStore(workspace_dir)
    with store.db.connect() as conn:
        stored = stages.read_rows(conn, "dogs", stage)
    assert sum(r.status == "kept" for rows in stored.values() for r in rows) == kept
    keys = list(open_instance(store).get_dynamic_partitions("dogs_images"))
    opens.clear()
    report = StageExecutor(store, workflow, logging.getLogger("test")).run(workflow.stage(stage), keys)
    assert len(opens) == expected_opens
    assert (report.images, report.cache_hits, report.computed, report.kept) == (6, 6, 0, kept)
    with store.db.connect() as conn:
        assert stages.read_rows(conn, "dogs", stage) == stored
