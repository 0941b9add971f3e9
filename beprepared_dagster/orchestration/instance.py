"""The workspace's Dagster instance: DAGSTER_HOME inside the workspace, with a dagster.yaml written for the
user (one run at a time, telemetry off). Without a persisted DAGSTER_HOME, `dagster dev` deletes its history,
and the materialization history is half of the cache."""

from __future__ import annotations

from pathlib import Path

from beprepared_dagster.store.workspace import WorkspaceStore

DAGSTER_YAML = """\
# Written by beprepared-dagster; edit freely, it is not overwritten.
telemetry:
  enabled: false
# Stages write the workspace's DuckDB file, which takes one writer at a time: keep runs sequential.
concurrency:
  runs:
    max_concurrent_runs: 1
"""


def ensure_dagster_home(store: WorkspaceStore) -> Path:
    home = store.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    return home


def open_instance(store: WorkspaceStore):  # -> dagster.DagsterInstance
    import dagster as dg

    return dg.DagsterInstance.from_config(str(ensure_dagster_home(store)))
