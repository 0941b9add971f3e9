"""The batched event log on a real Dagster instance (SQLite files in a temp workspace): range runs report
every partition, failures keep every event and the same status as Dagster's default storage, a failing
batch leaves nothing behind for Dagster's fallback to duplicate, and workspaces' dagster.yaml files are
upgraded only while unmodified.

Does not cover `dagster dev`, the daemon, GraphQL or log streaming (see e2e/test_batched_dagster_dev.py),
nor speed (bench/bench_bookkeeping.py).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value
from dagster._serdes import deserialize_value, serialize_value

from beprepared_dagster.orchestration import instance as instance_mod
from beprepared_dagster.orchestration.event_log import BatchedSqliteEventLogStorage
from beprepared_dagster.orchestration.instance import (
    EVENT_BATCH_SIZE_ENV,
    PREVIOUS_DAGSTER_YAMLS,
    ensure_dagster_home,
    open_instance,
    render_dagster_yaml,
)
from beprepared_dagster.store.workspace import WorkspaceStore

PARTS = dg.DynamicPartitionsDefinition(name="images")
PLANNED, MATERIALIZED = (
    dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
    dg.DagsterEventType.ASSET_MATERIALIZATION,
)


def chain(fail_at: str | None = None) -> list[dg.AssetsDefinition]:
    """a -> b -> c, range-run assets like the stages: run-wide metadata, per-partition metadata on two keys."""
    built: list[dg.AssetsDefinition] = []
    for name in "abc":
        deps = [built[-1]] if built else []
        policy = dg.BackfillPolicy.single_run()
        body = _stage_body(name, fail=name == fail_at)
        built.append(dg.asset(name=name, partitions_def=PARTS, deps=deps, backfill_policy=policy)(body))
    return built


def _stage_body(name: str, fail: bool):
    def body(context) -> None:
        keys = context.partition_keys
        context.add_asset_metadata({"images": len(keys), "stage": name})
        for key in keys[:2]:
            context.add_asset_metadata({"thumbnail": f"{name}-{key[:6]}"}, partition_key=key)
        if fail:
            raise RuntimeError(f"{name} fails half-way through the run")

    return body


def keys_for(n: int, salt: str = "") -> list[str]:
    return [f"{salt}{i:064x}"[-64:] for i in range(n)]


def run_range(instance: dg.DagsterInstance, assets: list, keys: list[str]) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions("images", keys)
    tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    result = dg.materialize(assets, instance=instance, tags=tags, run_config=quiet, raise_on_error=False)
    flush = getattr(instance.event_log_storage, "flush", None)  # ours writes the last step's events on
    if flush is not None:  # a background thread: stored before anything is checked
        flush()
    return result


def status(instance: dg.DagsterInstance, asset: str) -> dict[str, int]:
    """What the UI's partition status shows: the status cache Dagster builds from the event log."""
    value = get_and_update_asset_status_cache_value(instance, dg.AssetKey(asset), PARTS)
    assert value is not None
    return {
        "materialized": len(value.deserialize_materialized_partition_subsets(PARTS)),
        "failed": len(value.deserialize_failed_partition_subsets(PARTS)),
        "in_progress": len(value.deserialize_in_progress_partition_subsets(PARTS)),
    }


def event_types(instance: dg.DagsterInstance, run_id: str) -> dict[str, int]:
    """Events of a run's own log by type; a planned event counts the partitions it plans."""
    counts: dict[str, int] = {}
    for record in instance.get_records_for_run(run_id, limit=100_000).records:
        kind = record.event_log_entry.dagster_event_type or "log"
        subset = getattr(record.event_log_entry.dagster_event.event_specific_data, "partitions_subset", None)
        counts[kind] = counts.get(kind, 0) + (len(subset) if subset is not None else 1)
    return counts


def planned_rows(instance: dg.DagsterInstance, asset: str) -> list:
    """The per-partition planned events of an asset, as the asset index (partition status) reads them."""
    records = instance.get_event_records(
        dg.EventRecordsFilter(PLANNED, asset_key=dg.AssetKey(asset)), limit=100_000
    )
    return [r.event_log_entry.dagster_event.event_specific_data for r in records]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace's DAGSTER_HOME with the dagster.yaml beprepared writes; no batch size in the environment."""
    monkeypatch.delenv(EVENT_BATCH_SIZE_ENV, raising=False)
    return ensure_dagster_home(WorkspaceStore(tmp_path / "ws"))


@pytest.fixture
def bulk_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the batches that took the bulk path."""
    calls: list[int] = []
    original = BatchedSqliteEventLogStorage._store_asset_records

    def spy(self, conn, events, event_ids):
        calls.append(len(events))
        return original(self, conn, events, event_ids)

    monkeypatch.setattr(BatchedSqliteEventLogStorage, "_store_asset_records", spy)
    return calls


def test_workspace_instance_uses_the_batched_storage_and_turns_batching_on(home, monkeypatch):
    with dg.DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        assert type(storage) is BatchedSqliteEventLogStorage
        assert storage._base_dir == str(home / "history" / "runs")  # the default layout's files
        assert os.environ[EVENT_BATCH_SIZE_ENV] == "1000"
    monkeypatch.setenv(EVENT_BATCH_SIZE_ENV, "0")  # the user's choice wins (0 = no batching)
    with dg.DagsterInstance.from_config(str(home)):
        assert os.environ[EVENT_BATCH_SIZE_ENV] == "0"


def test_dynamic_partitions_read_through_the_kept_connection_see_every_other_writer(home):
    """Reads of dynamic partitions go through one kept connection and a list cached until another
    connection commits: what another process adds or deletes is seen at the next read, even a deletion of
    the newest key followed by an addition (same count, same highest row id)."""
    with (
        dg.DagsterInstance.from_config(str(home)) as ours,
        dg.DagsterInstance.from_config(str(home)) as other,
    ):
        assert ours.get_dynamic_partitions("images") == []
        other.add_dynamic_partitions("images", ["a", "b", "c"])
        assert ours.get_dynamic_partitions("images") == ["a", "b", "c"]
        assert ours.get_dynamic_partitions("images") == ["a", "b", "c"]  # the cached list, unchanged
        assert ours.has_dynamic_partition("images", "c") and not ours.has_dynamic_partition("images", "d")
        other.delete_dynamic_partition("images", "c")
        other.add_dynamic_partitions("images", ["d"])
        assert ours.get_dynamic_partitions("images") == ["a", "b", "d"]
        assert ours.has_dynamic_partition("images", "d") and not ours.has_dynamic_partition("images", "c")
        ours.add_dynamic_partitions("images", ["e"])  # its own writes too (another connection of ours)
        assert ours.get_dynamic_partitions("images") == ["a", "b", "d", "e"]
        assert other.get_dynamic_partitions("images") == ["a", "b", "d", "e"]
        ours.get_dynamic_partitions("images").append("x")  # a caller's change stays the caller's
        assert ours.get_dynamic_partitions("images") == ["a", "b", "d", "e"]


def _schema(path: Path) -> tuple:
    conn = sqlite3.connect(path)
    try:
        return (
            sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()),
            conn.execute("SELECT version_num FROM alembic_version").fetchall(),
            conn.execute("PRAGMA journal_mode").fetchone()[0],
        )
    finally:
        conn.close()


def test_a_new_runs_shard_is_a_copy_of_one_dagster_initialized(home, tmp_path):
    """A run's shard is copied from a template Dagster itself initialized (its set-up loads ~90 migration
    scripts per run): same tables, indexes, alembic stamp and WAL mode as Dagster's default storage makes,
    and the run's events land in it."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = run_range(instance, chain(), keys_for(3))
        assert result.success
        assert event_types(instance, result.run_id)[MATERIALIZED.value] == 9
        ours = home / "history" / "runs" / f"{result.run_id}.db"
    templates = list((home / "history" / "runs").glob(".shard-template-*.db"))
    assert len(templates) == 1 and not list((home / "history" / "runs").glob("*.tmp"))
    default = SqliteEventLogStorage(str(tmp_path / "default"))  # Dagster's own storage, its own _initdb
    with default.run_connection("some-run"):
        pass
    default.dispose()
    assert _schema(ours)[:2] == _schema(tmp_path / "default" / "some-run.db")[:2]
    assert _schema(ours)[2] == "wal"


def test_range_run_reports_every_partition_with_its_metadata(home, bulk_calls):
    keys = keys_for(300)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = run_range(instance, chain(), keys)
        assert result.success
        assert sorted(bulk_calls) == [300] * 3 + [900], "planned events (one batch) + one per step"
        for asset in "abc":
            key = dg.AssetKey(asset)
            assert instance.get_materialized_partitions(key) == set(keys)
            assert len(instance.fetch_materializations(key, limit=1000).records) == 300
            assert status(instance, asset) == {"materialized": 300, "failed": 0, "in_progress": 0}
            for k in (keys[0], keys[1], keys[150], keys[-1]):
                records = instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=key, asset_partitions=[k]), limit=5
                ).records
                assert [(r.partition_key, r.run_id) for r in records] == [(k, result.run_id)]
                meta = records[0].asset_materialization.metadata
                assert meta["images"].value == 300 and meta["stage"].value == asset
                assert ("thumbnail" in meta) == (k in keys[:2])
            latest = instance.get_latest_materialization_event(key)
            assert latest is not None and latest.run_id == result.run_id
        counts = event_types(instance, result.run_id)
        assert counts[PLANNED.value] == 900 and counts[MATERIALIZED.value] == 900
        own = [r for r in instance.get_records_for_run(result.run_id, limit=10_000).records]
        assert sum(r.event_log_entry.dagster_event_type == PLANNED for r in own) == 3  # one per asset
        for asset in "abc":  # and the index holds each partition's own planned event
            rows = planned_rows(instance, asset)
            assert sorted(p.partition for p in rows) == sorted(keys)
            assert all(p.partitions_subset is None and p.asset_key == dg.AssetKey(asset) for p in rows)
    # Every stored event text is exactly what Dagster's serializer writes for that event (the batch reuses
    # the text of a step's first materialization around the others' own).
    with sqlite3.connect(home / "history" / "runs" / "index.db") as db:
        texts = [t for (t,) in db.execute("SELECT event FROM event_logs WHERE partition IS NOT NULL")]
        index_page = db.execute("PRAGMA page_size").fetchone()[0]
    with sqlite3.connect(home / "history" / "runs" / f"{result.run_id}.db") as db:
        run_page = db.execute("PRAGMA page_size").fetchone()[0]
    assert (index_page, run_page) == (16384, 8192)  # new files pack several ~2 KB event rows per page
    assert len(texts) == 1800
    assert all(serialize_value(deserialize_value(t, EventLogEntry)) == t for t in texts)


def scenario(instance: dg.DagsterInstance, n: int) -> dict:
    """A run that fails at its third step, then everything the instance reports about it."""
    result = run_range(instance, chain(fail_at="c"), keys_for(n))
    assert not result.success
    counts = event_types(instance, result.run_id)
    wanted = (PLANNED, MATERIALIZED, dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE)
    return {
        "events": {t.value: counts.get(t.value, 0) for t in wanted},
        "status": {asset: status(instance, asset) for asset in "abc"},
        "run": instance.get_run_by_id(result.run_id).status,
    }


def test_a_run_failing_half_way_keeps_every_event_and_the_default_storages_status(home, tmp_path, bulk_calls):
    with dg.DagsterInstance.from_config(str(home)) as instance:
        ours = scenario(instance, 60)
    assert bulk_calls, "the bulk path was not taken"
    assert ours == {
        "events": {PLANNED.value: 180, MATERIALIZED.value: 120, "STEP_FAILURE": 1, "PIPELINE_FAILURE": 1},
        "status": {
            "a": {"materialized": 60, "failed": 0, "in_progress": 0},
            "b": {"materialized": 60, "failed": 0, "in_progress": 0},
            "c": {"materialized": 0, "failed": 60, "in_progress": 0},
        },
        "run": dg.DagsterRunStatus.FAILURE,
    }
    default_home = tmp_path / "default"
    default_home.mkdir()
    with dg.instance_for_test(temp_dir=str(default_home)) as default:
        assert type(default.event_log_storage).__name__ == "SqliteEventLogStorage"
        assert scenario(default, 60) == ours


def test_a_failing_batch_leaves_nothing_for_dagsters_fallback_to_duplicate(home, monkeypatch, capfd):
    """The first two bulk writes (the planned events, then the first step's materializations) fail after
    writing their rows; Dagster then stores those batches event by event. Each event must exist once."""
    original, failures = BatchedSqliteEventLogStorage._store_asset_records, []

    def failing(self, conn, events, event_ids):
        original(self, conn, events, event_ids)
        # Dagster's batches only (the planned events of two assets, then a step's materializations), not
        # the one-event writes of its fallback.
        if len(failures) < 2 and len({id(e) for e in events}) > 1:
            failures.append(len(events))
            raise OSError("disk I/O error (injected)")

    monkeypatch.setattr(BatchedSqliteEventLogStorage, "_store_asset_records", failing)
    keys = keys_for(60)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = run_range(instance, chain()[:2], keys)
        assert result.success and failures == [120, 60]
        assert "Falling back to storing multiple single-event storage requests" in capfd.readouterr().err
        counts = event_types(instance, result.run_id)
        assert counts[PLANNED.value] == 120 and counts[MATERIALIZED.value] == 120
        for asset in "ab":
            records = instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records
            assert sorted(r.partition_key for r in records) == sorted(keys)
            assert status(instance, asset) == {"materialized": 60, "failed": 0, "in_progress": 0}


def test_an_unmodified_older_dagster_yaml_is_upgraded_and_the_history_kept(tmp_path, monkeypatch):
    monkeypatch.delenv(EVENT_BATCH_SIZE_ENV, raising=False)
    store = WorkspaceStore(tmp_path / "ws")
    store.dagster_home.mkdir(parents=True)
    (store.dagster_home / "dagster.yaml").write_text(PREVIOUS_DAGSTER_YAMLS[0])
    first, second = keys_for(20, "a"), keys_for(20, "b")
    with dg.DagsterInstance.from_config(str(store.dagster_home)) as old:
        assert type(old.event_log_storage).__name__ == "SqliteEventLogStorage"
        assert run_range(old, chain()[:1], first).success
    with open_instance(store) as instance:
        assert (store.dagster_home / "dagster.yaml").read_text() == render_dagster_yaml(store.dagster_home)
        assert type(instance.event_log_storage) is BatchedSqliteEventLogStorage
        assert instance.get_materialized_partitions(dg.AssetKey("a")) == set(first)
        assert run_range(instance, chain()[:1], second).success
        assert instance.get_materialized_partitions(dg.AssetKey("a")) == set(first + second)


def test_the_previous_template_is_upgraded_to_the_one_second_run_queue(tmp_path):
    """A dagster.yaml written by the version before (batched event log, Dagster's 5 s dequeue interval) is
    still ours: it gets the 1 s dequeue interval, and runs stay one at a time."""
    store = WorkspaceStore(tmp_path / "ws")
    store.dagster_home.mkdir(parents=True)
    old = instance_mod.PREVIOUS_TEMPLATES[0].replace("{event_log_dir}", "/somewhere/else/history/runs/")
    (store.dagster_home / "dagster.yaml").write_text(old)
    with open_instance(store) as instance:
        assert (store.dagster_home / "dagster.yaml").read_text() == render_dagster_yaml(store.dagster_home)
        assert instance.run_coordinator.dequeue_interval_seconds == 1
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1


def test_a_moved_workspace_gets_its_own_paths(tmp_path):
    store = WorkspaceStore(tmp_path / "moved")
    store.dagster_home.mkdir(parents=True)
    (store.dagster_home / "dagster.yaml").write_text(
        render_dagster_yaml(tmp_path / "elsewhere" / "dagster_home")
    )
    ensure_dagster_home(store)
    text = (store.dagster_home / "dagster.yaml").read_text()
    assert text == render_dagster_yaml(store.dagster_home) and "elsewhere" not in text


@pytest.mark.parametrize(
    ("extra", "hint"),
    [("# my own comment\n", True), ("storage:\n  postgres:\n    postgres_url: postgresql://x\n", False)],
)
def test_an_edited_dagster_yaml_is_left_alone(tmp_path, caplog, extra, hint):
    store = WorkspaceStore(tmp_path / "ws")
    store.dagster_home.mkdir(parents=True)
    edited = PREVIOUS_DAGSTER_YAMLS[0] + extra
    (store.dagster_home / "dagster.yaml").write_text(edited)
    with caplog.at_level(logging.INFO, logger="beprepared"):
        ensure_dagster_home(store)
    assert (store.dagster_home / "dagster.yaml").read_text() == edited
    hints = [r.getMessage() for r in caplog.records if instance_mod.STORAGE_CLASS in r.getMessage()]
    assert bool(hints) == hint
    if hint:
        assert "left as it is" in hints[0] and "event_log_storage:" in hints[0]
        assert str(store.dagster_home / "history" / "runs") in hints[0]


def test_a_batch_whose_ids_cannot_be_consecutive_rolls_back(tmp_path):
    """SQLite picks random ids once a table holds id 2^63-1: the batch must refuse, leaving no row."""
    import sqlite3

    from dagster._core.errors import DagsterInvariantViolationError

    storage = BatchedSqliteEventLogStorage(str(tmp_path), event_batch_size=0)
    with dg.DagsterInstance.ephemeral() as source:
        result = run_range(source, chain()[:1], keys_for(5))
        events = [
            r.event_log_entry
            for r in source.get_records_for_run(result.run_id).records
            if r.event_log_entry.dagster_event_type == MATERIALIZED.value
        ]
    index = sqlite3.connect(str(tmp_path / "index.db"))
    index.execute("INSERT INTO event_logs (id, run_id, event) VALUES (9223372036854775807, 'x', '{}')")
    index.commit()
    with pytest.raises(DagsterInvariantViolationError, match="not consecutive"):
        storage._store_now(events)  # the batch write itself (store_event_batch hands it to a thread)
    assert index.execute("SELECT count(*) FROM event_logs").fetchone() == (1,)
    shard = sqlite3.connect(str(tmp_path / f"{result.run_id}.db"))
    assert shard.execute("SELECT count(*) FROM event_logs").fetchone() == (0,)


WRITER = """
import os
import sys
import time
from dagster_shared.serdes import deserialize_value
from beprepared_dagster.orchestration.event_log import BatchedSqliteEventLogStorage

base_dir, events_file, name = sys.argv[1:]
events = deserialize_value(open(events_file).read())
storage = BatchedSqliteEventLogStorage(base_dir, event_batch_size=0)
batches = [[e._replace(run_id=f"{name}-{b}") for e in events] for b in range(4)]
open(f"{events_file}.{name}.ready", "w").close()
while not os.path.exists(f"{events_file}.go"):  # both writers start their batches together
    time.sleep(0.005)
for batch in batches:
    storage.store_event_batch(batch)
"""


@pytest.mark.slow
def test_two_processes_writing_batches_at_once(tmp_path):
    """Each batch holds two write locks (index, then run shard): concurrent writers must queue, not fail."""
    import subprocess
    import sys
    import time

    from dagster_shared.serdes import serialize_value

    with dg.DagsterInstance.ephemeral() as source:
        result = run_range(source, chain()[:1], keys_for(250))
        events = [
            r.event_log_entry
            for r in source.get_records_for_run(result.run_id).records
            if r.event_log_entry.dagster_event_type in (PLANNED.value, MATERIALIZED.value)
        ]
    (tmp_path / "events.json").write_text(serialize_value(events))
    (tmp_path / "writer.py").write_text(WRITER)
    base = tmp_path / "runs"
    BatchedSqliteEventLogStorage(str(base), event_batch_size=0)  # index.db created once, up front
    writers = [
        subprocess.Popen(
            [sys.executable, str(tmp_path / "writer.py"), str(base), str(tmp_path / "events.json"), n]
        )
        for n in ("w1", "w2")
    ]
    wait_for_files = [tmp_path / f"events.json.{n}.ready" for n in ("w1", "w2")]
    deadline = time.monotonic() + 60
    while not all(f.exists() for f in wait_for_files) and time.monotonic() < deadline:
        time.sleep(0.01)
    (tmp_path / "events.json.go").touch()
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    storage = BatchedSqliteEventLogStorage(str(base), event_batch_size=0)
    for name in ("w1", "w2"):
        for batch in range(4):
            records = storage.get_records_for_run(f"{name}-{batch}", limit=1000).records
            assert len(records) == 500
    materialized = storage.get_materialized_partitions(dg.AssetKey("a"))
    assert materialized == set(keys_for(250))
    counts = storage.get_event_records(
        dg.EventRecordsFilter(MATERIALIZED, asset_key=dg.AssetKey("a")), limit=5000
    )
    assert len(counts) == 8 * 250
