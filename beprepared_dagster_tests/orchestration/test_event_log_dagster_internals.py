"""Guards for the Dagster internals that `orchestration/event_log.py` relies on.

A Dagster upgrade that changes any of them fails here, with a message saying what to re-verify, instead of
silently making runs slow again or, worse, writing different rows than Dagster's own storage would. The
strongest check is the equivalence test: the same events stored by Dagster's `store_event`, one by one, and
by our `store_event_batch` must leave byte-identical tables in the run shard and in index.db.

Does not cover runs, the UI or other processes (see test_event_log.py and e2e/test_batched_dagster_dev.py).
"""

from __future__ import annotations

import inspect
import sqlite3
from importlib.metadata import version
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import DagsterEventType
from dagster._core.instance.methods.event_methods import EventMethods
from dagster._core.instance.runs.run_domain import RunDomain
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.base import EventLogStorage
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine

from beprepared_dagster.orchestration.event_log import BULK_EVENT_TYPES, BatchedSqliteEventLogStorage
from beprepared_dagster.orchestration.instance import EVENT_BATCH_SIZE_ENV

RE_VERIFY = (
    "beprepared_dagster/orchestration/event_log.py subclasses Dagster's SqliteEventLogStorage and reuses its "
    "private helpers; after a Dagster upgrade re-read SqlEventLogStorage.store_event / "
    "SqliteEventLogStorage.store_event and _connect, EventMethods.handle_new_event and "
    "RunDomain._log_asset_planned_events, update event_log.py, then bump the pin in pyproject.toml."
)
PINNED = "1.13.27"


def test_dagster_is_the_pinned_version():
    assert dg.__version__ == PINNED, f"dagster {dg.__version__} is not the pinned {PINNED}. {RE_VERIFY}"
    assert version("dagster-webserver") == PINNED, RE_VERIFY
    pins = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert f'"dagster=={PINNED}"' in pins and f'"dagster-webserver=={PINNED}"' in pins, RE_VERIFY


@pytest.mark.parametrize(
    ("owner", "name", "params"),
    [
        (SqliteEventLogStorage, "__init__", ["self", "base_dir", "inst_data"]),
        (SqliteEventLogStorage, "_initdb", ["self", "engine", "for_index_shard"]),
        (SqliteEventLogStorage, "conn_string_for_shard", ["self", "shard_name"]),
        (SqliteEventLogStorage, "has_table", ["self", "table_name"]),
        (SqliteEventLogStorage, "store_event", ["self", "event"]),
        (SqliteEventLogStorage, "_connect", ["self", "shard"]),
        (SqlEventLogStorage, "_event_to_row", ["self", "event"]),
        (SqlEventLogStorage, "_store_asset_event_tags", ["self", "conn", "events", "event_ids"]),
        (SqlEventLogStorage, "_store_asset_event", ["self", "conn", "event", "event_id"]),
        (
            SqlEventLogStorage,
            "_get_asset_entry_values",
            ["self", "event", "event_id", "has_asset_key_index_cols"],
        ),
        (EventLogStorage, "store_event_batch", ["self", "events"]),
        (EventMethods, "handle_new_event", ["self", "event", "batch_metadata"]),
    ],
)
def test_internals_we_call_or_override_keep_their_signatures(owner, name, params):
    method = getattr(owner, name, None)
    assert method is not None, f"{owner.__name__}.{name} is gone. {RE_VERIFY}"
    assert list(inspect.signature(method).parameters) == params, (
        f"{owner.__name__}.{name}{inspect.signature(method)} changed. {RE_VERIFY}"
    )


def test_sqlite_storage_keeps_the_attributes_and_connection_pattern_we_reuse(tmp_path):
    storage = SqliteEventLogStorage(str(tmp_path))
    assert isinstance(storage._db_lock, type(__import__("threading").Lock())), RE_VERIFY
    assert isinstance(storage._initialized_dbs, set), RE_VERIFY
    source = inspect.getsource(SqliteEventLogStorage._connect)
    # Our batch opens its connections the way _connect does: engine per shard, NullPool, busy timeout.
    for fragment in ("self._db_lock", "NullPool", "SQLITE_BUSY_TIMEOUT_SECONDS", "self._initdb(engine)"):
        assert fragment in source, f"SqliteEventLogStorage._connect no longer uses {fragment}. {RE_VERIFY}"


def test_dagster_reads_the_env_vars_we_set_or_rely_on():
    batch_size = inspect.getsource(EventMethods._get_event_batch_size)
    assert f'"{EVENT_BATCH_SIZE_ENV}"' in batch_size, (
        f"Dagster no longer reads {EVENT_BATCH_SIZE_ENV}. {RE_VERIFY}"
    )
    handle = inspect.getsource(EventMethods.handle_new_event)
    assert "store_event_batch(events)" in handle and "store_event(event)" in handle, (
        f"handle_new_event no longer batches, or no longer falls back event by event. {RE_VERIFY}"
    )
    planned = inspect.getsource(RunDomain._log_asset_planned_events)
    assert '"DAGSTER_EMIT_PLANNED_EVENTS_INDIVIDUALLY"' in planned and "batch_metadata" in planned, (
        f"planned events are no longer sent as one batch at run creation. {RE_VERIFY}"
    )
    subset = inspect.getsource(
        EventLogStorage.supports_partition_subset_in_asset_materialization_planned_events.fget
    )
    assert '"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"' in subset, RE_VERIFY


def test_bulk_event_types_are_still_asset_events_dagster_batches():
    from dagster._core.events import ASSET_EVENTS, BATCH_WRITABLE_EVENTS

    assert BULK_EVENT_TYPES <= ASSET_EVENTS and BULK_EVENT_TYPES <= BATCH_WRITABLE_EVENTS, RE_VERIFY


# --- equivalence with Dagster's own per-event path -----------------------------------------------------------


@pytest.fixture(scope="module")
def events() -> list:
    """Real planned + materialization + observation events of a range run of two assets (40 partitions)."""
    parts = dg.StaticPartitionsDefinition([f"p{i:03d}" for i in range(40)])

    @dg.asset(partitions_def=parts, backfill_policy=dg.BackfillPolicy.single_run())
    def first(context) -> None:
        context.add_asset_metadata({"images": len(context.partition_keys)})
        context.add_asset_metadata({"thumb": "x"}, partition_key=context.partition_keys[1])

    @dg.asset(partitions_def=parts, deps=[first], backfill_policy=dg.BackfillPolicy.single_run())
    def second(context) -> None:
        for key in context.partition_keys[:3]:
            context.log_event(dg.AssetObservation(asset_key="second", partition=key, metadata={"n": 1}))

    with dg.DagsterInstance.ephemeral() as instance:
        keys = parts.get_partition_keys()
        tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
        result = dg.materialize([first, second], instance=instance, tags=tags)
        assert result.success
        records = instance.get_records_for_run(result.run_id).records
    wanted = {t.value for t in BULK_EVENT_TYPES}
    return [r.event_log_entry for r in records if r.event_log_entry.dagster_event_type in wanted]


CLOCK_COLUMNS = {"create_timestamp", "migration_completed"}


def _dump(db: Path) -> dict[str, list]:
    conn = sqlite3.connect(str(db))
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY 1")]
        dump = {}
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid')
            # Clock readings taken when a storage creates its files: the only columns that may differ.
            keep = [i for i, d in enumerate(cursor.description) if d[0] not in CLOCK_COLUMNS]
            dump[table] = [tuple(row[i] for i in keep) for row in cursor]
        return dump
    finally:
        conn.close()


def test_store_event_batch_writes_exactly_what_dagsters_store_event_writes(tmp_path, events):
    types = {e.dagster_event_type for e in events}
    assert types == {t.value for t in BULK_EVENT_TYPES}, (
        f"the sample should hold every bulk type, has {types}"
    )
    upstream = SqliteEventLogStorage(str(tmp_path / "upstream"))
    for event in events:
        upstream.store_event(event)
    ours = BatchedSqliteEventLogStorage(str(tmp_path / "ours"), event_batch_size=0)
    for start in range(0, len(events), 37):  # several batches, split mid-asset
        ours.store_event_batch(events[start : start + 37])
    ours.flush()  # batches are written on a background thread
    run_id = events[0].run_id
    for name in ("index.db", f"{run_id}.db"):
        expected, got = _dump(tmp_path / "upstream" / name), _dump(tmp_path / "ours" / name)
        assert got.keys() == expected.keys(), f"{name}: tables differ. {RE_VERIFY}"
        for table in expected:
            assert got[table] == expected[table], f"{name}: table {table} differs from Dagster's. {RE_VERIFY}"
    assert len(_dump(tmp_path / "ours" / "index.db")["event_logs"]) == len(events)
    assert _dump(tmp_path / "upstream" / "index.db")["asset_event_tags"], "the sample should index tags"


def test_a_batch_is_one_transaction_per_file(tmp_path, events):
    storage = BatchedSqliteEventLogStorage(str(tmp_path / "ours"), event_batch_size=0)
    storage.store_event_batch(events)  # first use: schema checks, shard creation, table probes
    storage.flush()
    counts = {"connect": 0, "commit": 0}

    def on(name):
        def listener(*_args):
            counts[name] += 1

        return listener

    listeners = [("connect", on("connect")), ("commit", on("commit"))]
    for name, fn in listeners:
        sa_event.listen(Engine, name, fn)
    try:
        storage.store_event_batch(events)
        storage.flush()
    finally:
        for name, fn in listeners:
            sa_event.remove(Engine, name, fn)
    assert len(events) > 150
    # The background writer keeps its two connections open between batches: at most two new ones.
    assert counts["commit"] == 2 and counts["connect"] <= 2, (
        f"storing {len(events)} events took {counts}: the bulk path was not taken. {RE_VERIFY}"
    )
    assert DagsterEventType.ASSET_MATERIALIZATION.value in {e.dagster_event_type for e in events}


# --- the background writer --------------------------------------------------------------------------------


def _slow_writes(monkeypatch, seconds: float) -> None:
    """Make every batch write take `seconds` longer, so a read that does not wait for it would miss it."""
    import time

    original = BatchedSqliteEventLogStorage._store_now

    def slow(self, events):
        time.sleep(seconds)
        original(self, events)

    monkeypatch.setattr(BatchedSqliteEventLogStorage, "_store_now", slow)


def test_every_read_sees_the_batches_handed_to_the_background_writer(tmp_path, events, monkeypatch):
    _slow_writes(monkeypatch, 0.3)
    storage = BatchedSqliteEventLogStorage(str(tmp_path), event_batch_size=0)
    storage.store_event_batch(events[:60])
    storage.store_event_batch(events[60:])
    # No flush: the read itself must wait for both batches.
    records = storage.get_records_for_run(events[0].run_id, limit=10_000).records
    assert len(records) == len(events)
    assert [r.storage_id for r in records] == sorted(r.storage_id for r in records)


def test_a_script_ending_right_after_a_batch_still_stores_it(tmp_path, events):
    """Handed to the writer thread and then the interpreter exits: the batch is written before it does."""
    import subprocess
    import sys

    from dagster_shared.serdes import serialize_value

    (tmp_path / "events.json").write_text(serialize_value(events))
    script = tmp_path / "writer.py"
    script.write_text(
        "import sys, time\n"
        "from dagster_shared.serdes import deserialize_value\n"
        "from beprepared_dagster.orchestration.event_log import BatchedSqliteEventLogStorage\n"
        "original = BatchedSqliteEventLogStorage._store_now\n"
        "def slow(self, events):\n"
        "    time.sleep(0.5)\n"
        "    original(self, events)\n"
        "BatchedSqliteEventLogStorage._store_now = slow\n"
        "storage = BatchedSqliteEventLogStorage(sys.argv[1], event_batch_size=0)\n"
        "storage.store_event_batch(deserialize_value(open(sys.argv[2]).read()))\n"
    )
    subprocess.run(
        [sys.executable, str(script), str(tmp_path / "runs"), str(tmp_path / "events.json")], check=True
    )
    assert len(_dump(tmp_path / "runs" / "index.db")["event_logs"]) == len(events)
