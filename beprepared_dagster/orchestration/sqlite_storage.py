"""Dagster's SQLite run and schedule storages, opened without loading Dagster's migration scripts when the
database is already set up.

Opening `SqliteRunStorage` or `SqliteScheduleStorage` (and the event log's first connection to a database
file) runs `check_alembic_revision`, which loads Dagster's ~90 alembic scripts to name the head revision,
~0.05-0.07 s each, three times per process: a fifth of a headless re-run's set-up. Dagster uses the answer
only to decide whether the database still needs its tables and stamp: a database already stamped with some
revision is left as it is (Dagster never migrates on open; `dagster instance migrate` does). So where the
file carries a stamp (and, for runs, the `instance_info` table Dagster would otherwise add), these classes
build the storage directly, as Dagster would after its check; anywhere else (a new or unstamped file, any
doubt) they take Dagster's own path. Same files, same schema, same behaviour.

Selected in `dagster.yaml` (written by `orchestration.instance`):

    run_storage:
      module: beprepared_dagster.orchestration.sqlite_storage
      class: StampedSqliteRunStorage
      config:
        base_dir: /abs/path/to/dagster_home/history/
    schedule_storage:
      module: beprepared_dagster.orchestration.sqlite_storage
      class: StampedSqliteScheduleStorage
      config:
        base_dir: /abs/path/to/dagster_home/schedules
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules import SqliteScheduleStorage
from dagster._core.storage.sqlite import create_db_conn_string
from dagster._serdes import ConfigurableClassData


def is_stamped(path: str, *tables: str) -> bool:
    """Whether the SQLite file at `path` carries exactly one alembic revision (what Dagster's check reads)
    and has `tables`. False for a missing or empty file and on any error (the caller then takes Dagster's
    path, which creates, stamps or reports)."""
    try:
        if os.path.getsize(path) == 0:
            return False
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except (OSError, sqlite3.Error):
        return False
    try:
        revisions = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return len(revisions) == 1 and bool(revisions[0][0]) and set(tables) <= names
    except sqlite3.Error:
        return False
    finally:
        conn.close()


class _Stamped:
    """`from_local` for a storage of one SQLite file, `<base_dir>/<_DB>.db`: built directly where the file
    is stamped and has `_TABLES`, else by Dagster's own `from_local` (see the module)."""

    _DB: str
    _TABLES: tuple[str, ...]

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]) -> Any:
        return cls.from_local(inst_data=inst_data, **config_value)

    @classmethod
    def from_local(cls, base_dir: str, inst_data: ConfigurableClassData | None = None) -> Any:
        if is_stamped(os.path.join(base_dir, f"{cls._DB}.db"), *cls._TABLES):
            return cls(create_db_conn_string(base_dir, cls._DB), inst_data)  # type: ignore[call-arg]
        return super().from_local(base_dir, inst_data=inst_data)  # type: ignore[misc]


class StampedSqliteRunStorage(_Stamped, SqliteRunStorage):
    """`SqliteRunStorage` that skips the alembic check for a database already set up (see the module)."""

    _DB, _TABLES = "runs", ("runs", "instance_info")


class StampedSqliteScheduleStorage(_Stamped, SqliteScheduleStorage):
    """`SqliteScheduleStorage` that skips the alembic check for a database already set up (see the module)."""

    _DB, _TABLES = "schedules", ("jobs",)
