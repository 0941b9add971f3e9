"""Dagster's run-sharded SQLite event log, writing each event batch in one transaction.

Every (stage, image) of a range run costs Dagster two asset events: ASSET_MATERIALIZATION_PLANNED when the
run is created and ASSET_MATERIALIZATION when the step ends. With `DAGSTER_EVENT_BATCH_SIZE` set, Dagster
hands both kinds to `EventLogStorage.store_event_batch`, but its SQLite storage stores them one by one: a
new engine, connection and commit per statement block, ~6 ms per event. `BatchedSqliteEventLogStorage`
writes a batch of asset events with two multi-row inserts and a few asset-key upserts on one connection per
database file, in one transaction each: 0.1-0.3 ms per event, most of it Dagster's own serialization of the
event, with the same rows in the same files (bench/RESULTS-bookkeeping.md).

It is a drop-in for the default storage (same `history/runs/` files, same schema), selected in
`dagster.yaml`:

    event_log_storage:
      module: beprepared_dagster.orchestration.event_log
      class: BatchedSqliteEventLogStorage
      config:
        base_dir: /abs/path/to/dagster_home/history/runs/
        event_batch_size: 1000      # optional; 0 leaves DAGSTER_EVENT_BATCH_SIZE alone

Dagster only batches when `DAGSTER_EVENT_BATCH_SIZE` is set in the process that writes the events (the
run worker, and whichever process creates the run: webserver, daemon or a headless `materialize`). Every
such process opens the instance from this `dagster.yaml`, so the storage sets that variable itself when it
is constructed, unless the environment already has it.

Relies on Dagster internals pinned in pyproject.toml and checked by `test_event_log_dagster_internals.py`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as db
from dagster import Field, IntSource, StringSource
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from beprepared_dagster.orchestration.instance import DEFAULT_EVENT_BATCH_SIZE, EVENT_BATCH_SIZE_ENV

# What reaches store_event_batch in a range run: the run's planned events and the step's per-partition
# materializations (and observations). Anything else in a batch takes Dagster's own per-event path.
BULK_EVENT_TYPES = frozenset(
    {
        DagsterEventType.ASSET_MATERIALIZATION,
        DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        DagsterEventType.ASSET_OBSERVATION,
    }
)


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` whose `store_event_batch` writes a batch in one transaction per file.

    Args:
        base_dir: the run-sharded event log folder (`<DAGSTER_HOME>/history/runs/` for the default layout).
        event_batch_size: the `DAGSTER_EVENT_BATCH_SIZE` to set in this process when the environment has
            none; 0 leaves the environment alone.
        inst_data: set by Dagster when it builds the storage from `dagster.yaml`.
    """

    def __init__(
        self,
        base_dir: str,
        event_batch_size: int = DEFAULT_EVENT_BATCH_SIZE,
        inst_data: ConfigurableClassData | None = None,
    ) -> None:
        # Only positive answers are cached: a table never disappears, but a migration can add one.
        self._tables_seen: set[str] = set()
        super().__init__(base_dir, inst_data=inst_data)
        if event_batch_size > 0:
            os.environ.setdefault(EVENT_BATCH_SIZE_ENV, str(event_batch_size))

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "base_dir": StringSource,
            "event_batch_size": Field(IntSource, is_required=False, default_value=DEFAULT_EVENT_BATCH_SIZE),
        }

    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> BatchedSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def has_table(self, table_name: str) -> bool:
        # Dagster asks this for every materialization (asset_event_tags), each time through a new engine.
        if table_name in self._tables_seen:
            return True
        found = super().has_table(table_name)
        if found:
            self._tables_seen.add(table_name)
        return found

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store a batch of one run's asset events in one transaction on the run's shard and one on the index.

        A batch with any other kind of event, or events of several runs, is stored by Dagster's per-event
        path. On any error both transactions roll back and the error propagates, so Dagster's fallback
        (storing the batch event by event) starts from a clean slate.
        """
        if len(events) < 2 or not _bulk_writable(events):
            super().store_event_batch(events)
            return
        rows = [self._event_to_row(event) for event in events]  # serialized once, written to both files
        with self._batch_connections(events[0].run_id) as (index, shard):
            shard.execute(SqlEventLogStorageTable.insert(), rows)
            event_ids = _insert_returning_ids(index, rows)
            self._store_asset_event_tags(index, events, event_ids)
            self._store_asset_records(index, events, event_ids)

    def _store_asset_records(
        self, conn: Connection, events: Sequence[EventLogEntry], event_ids: Sequence[int]
    ) -> None:
        """The asset_keys rows, as storing every event in turn would leave them.

        Each event type sets a fixed set of columns, so the last event of each (asset, type), applied in
        batch order, leaves every column as the whole sequence would: at most 3 upserts per asset instead
        of one per event (each one serializing the whole event)."""
        last: dict[tuple[str, str], int] = {}
        for position, event in enumerate(events):
            dagster_event = event.get_dagster_event()
            last[(dagster_event.asset_key.to_string(), dagster_event.event_type_value)] = position  # type: ignore[union-attr]
        for position in sorted(last.values()):
            self._store_asset_event(conn, events[position], event_ids[position])

    @contextmanager
    def _batch_connections(self, run_id: str) -> Iterator[tuple[Connection, Connection]]:
        """(index, run shard) connections, each in a write transaction taken up front (BEGIN IMMEDIATE).

        Both write locks are held before anything is written, so the only failure left between the two
        commits is an I/O error. The run shard commits first: should the index commit then fail, Dagster's
        fallback would duplicate events in the run's log, never materializations in the asset index.
        Locks are always taken index first, so two batching processes cannot deadlock; Dagster's own
        writers never hold both."""
        with self._db_lock:
            engines = [self._engine(INDEX_SHARD_NAME), self._engine(run_id)]
            try:
                with engines[0].connect() as index, engines[1].connect() as shard:
                    index.exec_driver_sql("BEGIN IMMEDIATE")
                    shard.exec_driver_sql("BEGIN IMMEDIATE")
                    yield index, shard
                    shard.commit()
                    index.commit()
            finally:
                for engine in engines:
                    engine.dispose()

    def _engine(self, shard: str) -> Engine:
        # As SqliteEventLogStorage._connect does (NullPool, busy timeout, schema on a shard's first use).
        engine = create_engine(
            self.conn_string_for_shard(shard),
            poolclass=NullPool,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        )
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        return engine


def _insert_returning_ids(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert event rows with one executemany; their ids, in row order (asset records and tags point at them).

    Under the write lock taken by BEGIN IMMEDIATE, SQLite gives each row of a rowid table max(rowid) + 1,
    so the rows get consecutive ids; the two max() reads prove it (when the table's largest id is 2^63-1,
    SQLite would pick random ids, the count would not match, and the batch would roll back). A RETURNING
    clause would cost one statement per row instead."""
    table = SqlEventLogStorageTable
    before = conn.execute(db.select(db.func.max(table.c.id))).scalar() or 0
    conn.execute(table.insert(), rows)
    after = conn.execute(db.select(db.func.max(table.c.id))).scalar() or 0
    if after - before != len(rows):
        raise DagsterInvariantViolationError(
            f"event_logs ids of a batch of {len(rows)} are not consecutive ({before} -> {after})"
        )
    return list(range(before + 1, after + 1))


def _bulk_writable(events: Sequence[EventLogEntry]) -> bool:
    run_id = events[0].run_id
    for event in events:
        dagster_event = event.dagster_event
        if (
            event.run_id != run_id
            or dagster_event is None
            or dagster_event.event_type not in BULK_EVENT_TYPES
            or dagster_event.asset_key is None
        ):
            return False
    return True
