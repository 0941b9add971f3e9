"""The run and schedule storages (and the event log's first connection) skip Dagster's alembic check only
where it would find a stamped database: a new workspace still gets Dagster's tables and stamp, a re-opened
one keeps its history and runs no check, and an unstamped or damaged file takes Dagster's own path."""

from __future__ import annotations

import sqlite3

import dagster as dg
import pytest

from beprepared_dagster.orchestration import instance as instance_mod
from beprepared_dagster.orchestration.event_log import BatchedSqliteEventLogStorage
from beprepared_dagster.orchestration.instance import open_instance, render_dagster_yaml
from beprepared_dagster.orchestration.sqlite_storage import (
    StampedSqliteRunStorage,
    StampedSqliteScheduleStorage,
    is_stamped,
)
from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster_tests.orchestration.test_event_log import chain, keys_for, run_range

CHECKS = (
    "dagster._core.storage.runs.sqlite.sqlite_run_storage",
    "dagster._core.storage.schedules.sqlite.sqlite_schedule_storage",
    "dagster._core.storage.event_log.sqlite.sqlite_event_log",
)


@pytest.fixture
def checks(monkeypatch) -> list[str]:
    """Each call of Dagster's `check_alembic_revision` by the three SQLite storages, by module."""
    import importlib

    calls: list[str] = []
    for name in CHECKS:
        module = importlib.import_module(name)
        original = module.check_alembic_revision

        def counted(config, conn, _name=name, _original=original):
            calls.append(_name.split(".")[3])
            return _original(config, conn)

        monkeypatch.setattr(module, "check_alembic_revision", counted)
    return calls


def test_a_new_workspace_is_set_up_by_dagster_and_a_reopened_one_skips_the_check(tmp_path, checks):
    store = WorkspaceStore(tmp_path / "ws")
    first, second = keys_for(5, "a"), keys_for(5, "b")
    with open_instance(store) as instance:
        assert type(instance.run_storage) is StampedSqliteRunStorage
        assert type(instance.schedule_storage) is StampedSqliteScheduleStorage
        assert run_range(instance, chain()[:1], first).success
    assert {"runs", "schedules", "event_log"} <= set(checks)  # new files: Dagster's own set-up
    home = store.dagster_home
    assert is_stamped(str(home / "history" / "runs.db"), "runs", "instance_info")
    assert is_stamped(str(home / "schedules" / "schedules.db"), "jobs")
    assert is_stamped(str(home / "history" / "runs" / "index.db"), "event_logs")

    checks.clear()
    with open_instance(store) as instance:
        assert run_range(instance, chain()[:1], second).success
        assert instance.get_materialized_partitions(dg.AssetKey("a")) == set(first + second)
        assert len(instance.get_runs()) == 2
        assert instance.get_run_by_id(instance.get_runs()[-1].run_id) is not None  # the first run's shard
        instance.schedule_storage.all_instigator_state()
    assert checks == []


def test_an_unstamped_database_takes_dagsters_path(tmp_path, checks):
    store = WorkspaceStore(tmp_path / "ws")
    with open_instance(store) as instance:
        assert run_range(instance, chain()[:1], keys_for(3)).success
    runs_db = store.dagster_home / "history" / "runs.db"
    conn = sqlite3.connect(runs_db)
    conn.execute("DELETE FROM alembic_version")
    conn.commit()
    conn.close()
    checks.clear()
    with open_instance(store) as instance:
        assert len(instance.get_runs()) == 1  # Dagster re-stamps it and keeps the runs
    assert checks == ["runs"]
    assert is_stamped(str(runs_db), "runs", "instance_info")


@pytest.mark.parametrize(
    "content", [None, b"", b"not a database at all, just some bytes" * 100, "no stamp table", "two stamps"]
)
def test_is_stamped_says_no_for_anything_but_one_stamp(tmp_path, content):
    path = tmp_path / "x.db"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE runs (id INTEGER)")
        if content == "two stamps":
            conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
            conn.execute("INSERT INTO alembic_version VALUES ('a'), ('b')")
        conn.commit()
        conn.close()
    assert not is_stamped(str(path), "runs")
    assert not path.exists() or content is not None  # a missing file is not created


def test_a_stamped_database_without_a_table_asked_for_is_not_stamped_enough(tmp_path):
    path = tmp_path / "x.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
    conn.execute("INSERT INTO alembic_version VALUES ('29b539ebc72a')")
    conn.execute("CREATE TABLE runs (id INTEGER)")
    conn.commit()
    conn.close()
    assert is_stamped(str(path), "runs")
    assert not is_stamped(str(path), "runs", "instance_info")


@pytest.mark.parametrize("template", range(len(instance_mod.PREVIOUS_TEMPLATES)))
def test_earlier_templates_are_upgraded_to_the_stamped_storages(tmp_path, template):
    store = WorkspaceStore(tmp_path / "ws")
    store.dagster_home.mkdir(parents=True)
    old = instance_mod.PREVIOUS_TEMPLATES[template].replace("{event_log_dir}", "/elsewhere/history/runs/")
    (store.dagster_home / "dagster.yaml").write_text(old)
    with open_instance(store) as instance:
        assert (store.dagster_home / "dagster.yaml").read_text() == render_dagster_yaml(store.dagster_home)
        assert type(instance.run_storage) is StampedSqliteRunStorage
        assert type(instance.event_log_storage) is BatchedSqliteEventLogStorage
        assert instance.run_storage._conn_string.endswith(f"{store.dagster_home}/history/runs.db")
