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

Two more savings, same rows for every reader:

* Planned events: the storage declares `supports_partition_subset_in_asset_materialization_planned_events`,
  so a range run's creation logs one ASSET_MATERIALIZATION_PLANNED per asset carrying the run's partitions
  instead of one per (asset, partition). The run's own log (its shard) keeps that one event; the index gets
  the per-partition rows Dagster's partition status reads (in progress, failed), each a real per-partition
  planned event, built from one serialized template.
* Materializations of one step differ only in their `AssetMaterialization` and timestamp: the first is
  serialized by Dagster, the others reuse its text around their own materialization's, after an equality
  check proves everything else identical (any difference takes Dagster's path).

And the writing happens off the run's thread: batches and single events queue, in order, for one background
thread per storage, which keeps its connections open (closing the last connection to a WAL database
checkpoints it, which cost more than the insert); whenever the queue drains, the run's shard is checkpointed,
so the UI's watchers see it. Every read first waits for what is queued (reads of dynamic partitions
excepted: queued events never touch that table), so this process never reads a log without its own events;
a process ending with events queued writes them first (atexit). The run's thread thus makes its next
events while SQLite writes the last ones (SQLite's C code lets go of the GIL).

Relies on Dagster internals pinned in pyproject.toml and checked by `test_event_log_dagster_internals.py`.
"""

from __future__ import annotations

import atexit
import collections
import functools
import json
import math
import os
import shutil
import sqlite3
import sys
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import sqlalchemy as db
from dagster import Field, IntSource, StringSource
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import AssetEventTagsTable, SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData, serialize_value
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from beprepared_dagster.orchestration.instance import DEFAULT_EVENT_BATCH_SIZE, EVENT_BATCH_SIZE_ENV
from beprepared_dagster.orchestration.sqlite_storage import is_stamped

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
        self._schema_seen: set[tuple[str, str]] = set()  # ("table" | "index" | "column", name) found
        self._writer = _BackgroundWriter(
            self._store_item, self._store_one_by_one, on_drained=self._close_shards, on_idle=self._close_kept
        )
        self._kept: dict[str, Connection] = {}  # the background writer's open connections, by shard
        self._partitions_conn: sqlite3.Connection | None = None  # reads of dynamic partitions
        self._partitions_lock = threading.Lock()
        self._partitions_cache: dict[str, tuple[int, list[str]]] = {}  # name → (data_version, keys)
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

    def _initdb(self, engine: Engine, for_index_shard: bool = False) -> None:
        path = engine.url.database
        if path and not _new_file(path) and is_stamped(path, "event_logs"):
            return  # all Dagster's check would find (see orchestration.sqlite_storage), without its scripts
        if not for_index_shard and path and _new_file(path) and self._copy_shard_template(path):
            return
        _create_with_page_size(path, INDEX_PAGE_SIZE if for_index_shard else RUN_PAGE_SIZE)
        super()._initdb(engine, for_index_shard=for_index_shard)

    def _copy_shard_template(self, path: str) -> bool:
        """A new run's shard as a copy of an empty one Dagster initialized (tables, WAL mode, alembic stamp):
        Dagster's own set-up loads its ~90 migration scripts twice per run (~0.1 s on the run's critical
        path, since the first read waits for it). The template is made once per Dagster version, by
        Dagster's own `_initdb`, and copied under a temporary name, then renamed: a shard is never seen
        half-written. False (Dagster's path then) where anything fails."""
        import dagster

        template = os.path.join(self._base_dir, f".shard-template-{dagster.__version__}-{RUN_PAGE_SIZE}.db")
        try:
            if not os.path.exists(template):
                staging = f"{template}.{os.getpid()}.{threading.get_ident()}.tmp"
                _create_with_page_size(staging, RUN_PAGE_SIZE)
                engine = create_engine(f"sqlite:///{staging}", poolclass=NullPool)
                try:
                    super()._initdb(engine)
                finally:
                    engine.dispose()
                _checkpoint(staging)
                os.replace(staging, template)
            staging = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
            shutil.copyfile(template, staging)
            os.replace(staging, path)
            return True
        except (OSError, sqlite3.Error, db.exc.SQLAlchemyError):
            return False

    def has_table(self, table_name: str) -> bool:
        # Dagster asks this for every materialization (asset_event_tags), each time through a new engine.
        return self._schema_has(("table", table_name), super().has_table)

    def has_secondary_index(self, name: str) -> bool:
        # Asked twice per read of asset records (each step's input versions), each through a new engine.
        return self._schema_has(("index", name), super().has_secondary_index)

    def has_asset_key_col(self, column_name: str) -> bool:
        # Asked three times per read of asset records, each an inspection through a new engine.
        return self._schema_has(("column", column_name), super().has_asset_key_col)

    def _schema_has(self, what: tuple[str, str], ask: Any) -> bool:
        """Only positive answers are kept: a migration adds tables, columns and secondary indexes, and
        nothing takes them away."""
        if what in self._schema_seen:
            return True
        found = ask(what[1])
        if found:
            self._schema_seen.add(what)
        return found

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        return True

    def store_event(self, event: EventLogEntry) -> None:
        """One event, queued behind the batches handed over before it (so event ids keep their order) and
        written by the same background thread; an error surfaces at the next read or `flush`."""
        self._writer.submit(_One(event))

    def _store_single(self, event: EventLogEntry) -> None:
        # Without batching (DAGSTER_EVENT_BATCH_SIZE=0) a planned event over a subset still gets its rows.
        if _subset_planned(event) is not None:
            self._store_now([event])
            return
        super().store_event(event)

    # Dynamic partitions live in their own table, which queued events never touch: reading them need not wait.
    def get_dynamic_partitions(self, partitions_def_name: str) -> Sequence[str]:
        version = self._read_partitions("PRAGMA data_version", ())[0][0]
        cached = self._partitions_cache.get(partitions_def_name)
        if cached is not None and cached[0] == version:  # no other connection committed since
            return list(cached[1])
        keys = [row[0] for row in self._read_partitions(_SELECT_PARTITIONS, (partitions_def_name,))]
        self._partitions_cache[partitions_def_name] = (version, keys)
        return list(keys)

    def has_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> bool:
        return bool(self._read_partitions(_HAS_PARTITION, (partitions_def_name, partition_key)))

    def _read_partitions(self, sql: str, params: tuple[str, ...]) -> list[tuple[Any, ...]]:
        """Dagster's query on the index, through one kept plain sqlite3 connection: Dagster's path builds an
        engine and a connection per call (~4 ms; a +10 run asks ~60 times, a step several times), and a
        kept connection outside a transaction blocks no writer (WAL). Read afresh every call."""
        self._check_partitions_table()  # through Dagster's path the first time: creates the index's schema
        with self._partitions_lock:
            if self._partitions_conn is None:
                self._partitions_conn = sqlite3.connect(
                    self.path_for_shard(INDEX_SHARD_NAME),
                    timeout=SQLITE_BUSY_TIMEOUT_SECONDS,
                    isolation_level=None,  # autocommit: each SELECT its own read transaction
                    check_same_thread=False,  # used under the lock, from whichever thread asks
                )
            return self._partitions_conn.execute(sql, params).fetchall()

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store a batch of one run's asset events in one transaction on the run's shard and one on the index,
        on a background thread: the run goes on making its next events while SQLite writes (its C code lets go
        of the GIL). Single events queue behind it (`store_event`); every read and `dispose` first waits for
        everything queued (reads of dynamic partitions excepted: queued events never touch them), so
        nothing in this process ever reads an event log without them.

        A batch with any other kind of event, or events of several runs, is queued event by event for
        Dagster's per-event path. A batch that fails on the background thread is stored event by event, as
        Dagster's own fallback would, at the next flush; an error there propagates to that caller.
        """
        subset = any(_subset_planned(e) is not None for e in events)
        if not events or (len(events) < 2 and not subset) or not _bulk_writable(events):
            super().store_event_batch(events)  # Dagster's default: store_event for each, queued in order
            return
        self._writer.submit(list(events))  # Dagster reuses nothing of it, but the list is ours from here

    def flush(self) -> None:
        """Wait until every batch handed to `store_event_batch` is stored (or stored by the fallback)."""
        self._writer.flush()

    def _connect(self, shard: str) -> Any:
        # Every read (and every write of Dagster's own path) of SqliteEventLogStorage connects here.
        self._writer.flush()
        return super()._connect(shard)

    def dispose(self) -> None:
        self._writer.stop()
        with self._partitions_lock:
            if self._partitions_conn is not None:
                self._partitions_conn.close()
                self._partitions_conn = None
        super().dispose()

    def _store_item(self, item: list[EventLogEntry] | _One) -> None:
        if isinstance(item, _One):
            self._store_single(item.event)
        else:
            self._store_now(item)

    def _store_one_by_one(self, events: Sequence[EventLogEntry]) -> None:
        for event in events:
            self._store_single(event)

    def _store_now(self, events: Sequence[EventLogEntry]) -> None:
        """The batch write itself. On any error both transactions roll back and the error propagates, so
        the fallback (event by event) starts from a clean slate."""
        rows = _Serializer(self).rows(events)  # serialized once, written to both files
        index_rows, index_events = [], []
        for event, row in zip(events, rows, strict=True):
            expanded = _expand_planned(event, row)
            index_rows.extend(expanded or [row])
            index_events.extend([event] * len(expanded or [row]))
        with self._batch_connections(events[0].run_id) as (index, shard):
            _insert_rows(shard, rows)
            event_ids = _insert_returning_ids(index, index_rows)
            self._store_tags(index, index_events, event_ids)
            self._store_asset_records(index, index_events, event_ids)

    def _store_tags(
        self, conn: Connection, events: Sequence[EventLogEntry], event_ids: Sequence[int]
    ) -> None:
        """The asset_event_tags rows Dagster's `_store_asset_event_tags` writes (the tags it indexes: data
        versions), without its per-event property lookups."""
        rows: list[tuple[Any, ...]] = []
        indexed: dict[frozenset, set[str]] = {}
        names: dict[Any, str] = {}
        for event, event_id in zip(events, event_ids, strict=True):
            dagster_event = event.dagster_event
            kind, data = dagster_event.event_type_value, dagster_event.event_specific_data
            if kind == _MATERIALIZATION:
                tags = data.materialization.tags
            elif kind == DagsterEventType.ASSET_OBSERVATION.value:
                tags = data.asset_observation.tags
            else:
                continue
            if not tags:
                continue
            keys = frozenset(tags)
            wanted = indexed.get(keys)
            if wanted is None:
                wanted = indexed[keys] = self.get_asset_tags_to_index(set(keys))
            if not wanted:
                continue
            asset = _asset_key(dagster_event)
            name = names.get(asset) or names.setdefault(asset, asset.to_string())
            stamp = _sqlite_timestamp(self._event_insert_timestamp(event))
            rows.extend((event_id, name, k, v, stamp) for k, v in tags.items() if k in wanted)
        if rows and self.has_table(AssetEventTagsTable.name):
            # The rows AssetEventTagsTable.insert() writes, without compiling parameters row by row.
            conn.exec_driver_sql(_INSERT_TAGS, rows)

    def _store_asset_records(
        self, conn: Connection, events: Sequence[EventLogEntry], event_ids: Sequence[int]
    ) -> None:
        """The asset_keys rows, as storing every event in turn would leave them.

        Each event type sets a fixed set of columns, so the last event of each (asset, type), applied in
        batch order, leaves every column as the whole sequence would: at most 3 upserts per asset instead
        of one per event (each one serializing the whole event)."""
        last: dict[tuple[Any, str], int] = {}
        for position, event in enumerate(events):
            dagster_event = event.get_dagster_event()
            last[(_asset_key(dagster_event), dagster_event.event_type_value)] = position
        for position in sorted(last.values()):
            self._store_asset_event(conn, events[position], event_ids[position])

    @contextmanager
    def _batch_connections(self, run_id: str) -> Iterator[tuple[Connection, Connection]]:
        """(index, run shard) connections, each in a write transaction taken up front (BEGIN IMMEDIATE).

        Both write locks are held before anything is written, so the only failure left between the two
        commits is an I/O error. The run shard commits first: should the index commit then fail, Dagster's
        fallback would duplicate events in the run's log, never materializations in the asset index.
        Locks are always taken index first, so two batching processes cannot deadlock; Dagster's own
        writers never hold both.

        The background writer keeps its connections open: closing the last connection to a WAL database
        checkpoints it, which cost more than the insert. When the queue is drained the newest run's shard is
        checkpointed (`_close_shards`; older runs' shards are closed): that is what changes the shard's file,
        which is how the UI's run-log watchers (watchdog on `<run_id>.db`) learn of new events. Everything is
        closed when the writer goes idle."""
        keep = self._writer.is_current()
        conns: list[Connection] = []
        try:
            # Dagster's lock guards engines and a shard's first schema, not the transaction: held for the
            # writes, it kept this process's readers waiting (SQLite's WAL lets them read meanwhile).
            with self._db_lock:
                conns.append(self._connection(INDEX_SHARD_NAME, keep))
                conns.append(self._connection(run_id, keep))
            index, shard = conns
            index.exec_driver_sql("BEGIN IMMEDIATE")
            shard.exec_driver_sql("BEGIN IMMEDIATE")
            yield index, shard
            shard.commit()
            index.commit()
        except BaseException:
            for conn in conns:
                with suppress(Exception):
                    conn.rollback()
            if keep:
                self._close_kept()  # never reuse a connection that failed
            raise
        finally:
            for conn in [] if keep else conns:
                conn.close()
                conn.engine.dispose()

    def _connection(self, shard: str, keep: bool) -> Connection:
        if keep and shard in self._kept:
            return self._kept[shard]
        conn = self._engine(shard).connect()
        if keep:
            self._kept[shard] = conn
        return conn

    def _close_shards(self) -> None:
        """The queue is drained: checkpoint the newest run shard's WAL into its file (what other processes'
        run-log watchers see) and keep its connection for the run's next batch; close older runs' shards."""
        shards = [n for n in self._kept if n != INDEX_SHARD_NAME]
        for name in shards[:-1]:
            self._close_kept(name)
        for name in shards[-1:]:
            self._kept[name].exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def _close_kept(self, shard: str | None = None) -> None:
        """Close the background writer's open connections (one shard's, or all); on its own thread."""
        for name in [shard] if shard is not None else list(self._kept):
            conn = self._kept.pop(name, None)
            if conn is not None:
                with suppress(Exception):
                    conn.close()
                conn.engine.dispose()

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


# SqlEventLogStorage.get_dynamic_partitions / has_dynamic_partition, as SQLAlchemy compiles them for SQLite.
_SELECT_PARTITIONS = "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = ? ORDER BY id"
_HAS_PARTITION = (
    "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = ? AND partition = ? LIMIT 1"
)

_WRITERS: weakref.WeakSet[_BackgroundWriter] = weakref.WeakSet()


@atexit.register
def _flush_all() -> None:
    """A script ending right after a run still stores what its event log was handed."""
    for writer in list(_WRITERS):
        writer.stop()


@dataclass(frozen=True)
class _One:
    """A single event in the writer's queue (a list is a batch)."""

    event: EventLogEntry


class _BackgroundWriter:
    """One thread storing handed-over batches in order; `flush` waits for them (from any other thread).
    `on_drained` runs on it whenever the queue empties; the thread ends after a few idle seconds (or at
    `stop`), calling `on_idle` on its way out."""

    IDLE_SECONDS = 5.0

    def __init__(self, store: Any, fallback: Any, on_drained: Any, on_idle: Any) -> None:
        self._store, self._fallback, self._on_drained, self._on_idle = store, fallback, on_drained, on_idle
        self._cond = threading.Condition()
        self._pending: collections.deque[list[EventLogEntry] | _One] = collections.deque()
        self._failed: list[tuple[list[EventLogEntry] | _One, BaseException]] = []
        self._thread: threading.Thread | None = None
        self._stopping = False
        _WRITERS.add(self)

    def is_current(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def submit(self, events: list[EventLogEntry] | _One) -> None:
        with self._cond:
            self._pending.append(events)
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(target=self._loop, name="event-log-writer", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self) -> None:
        if self.is_current():
            return
        with self._cond:
            while self._pending:
                self._cond.wait()
            failed, self._failed = self._failed, []
        single_error = None
        for item, exc in failed:
            if isinstance(item, _One):  # Dagster has no fallback for one event: its error is the caller's
                single_error = single_error or exc
                continue
            sys.stderr.write(  # Dagster's own words for its fallback
                f"Exception while storing event batch: {exc}\n"
                "Falling back to storing multiple single-event storage requests...\n"
            )
            self._fallback(item)
        if single_error is not None:
            raise single_error

    def stop(self) -> None:
        """Flush, then let the thread close its connections and end."""
        self.flush()
        with self._cond:
            thread, self._stopping = self._thread, True
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._stopping, timeout=self.IDLE_SECONDS)
                if not self._pending:  # idle or stopping: close up; the next submit starts a new thread
                    with suppress(Exception):
                        self._on_idle()  # before a new thread can exist: connections stay with theirs
                    self._thread = None
                    return
                events = self._pending[0]
            try:
                self._store(events)
            except Exception as exc:  # stored by the fallback at the next flush, as Dagster would
                with self._cond:
                    self._failed.append((events, exc))
            with self._cond:
                self._pending.popleft()
                drained = not self._pending
                self._cond.notify_all()  # stored: this process's readers go on
            if drained:  # nothing more queued: let readers elsewhere see it now
                with suppress(Exception):
                    self._on_drained()


# SQLite's default 4 KiB pages hold one ~2.2 KB materialization row each (two do not fit), wasting ~45% of
# every event log file; 8 KiB pages hold three, 16 KiB seven. A run's shard takes 8 KiB (its empty schema
# costs ~30 pages, and label runs are many and small), the one index file 16 KiB. Only a new file can take
# it (the page size is fixed at creation, and WAL mode, which Dagster sets next, fixes it for good).
RUN_PAGE_SIZE, INDEX_PAGE_SIZE = 8192, 16384


def _new_file(path: str) -> bool:
    """A database file not created yet (missing or empty)."""
    return path != ":memory:" and not (os.path.exists(path) and os.path.getsize(path) > 0)


def _checkpoint(path: str) -> None:
    """Fold a WAL file into its database, so the database file alone holds everything (the WAL mode itself
    is recorded in the file and stays)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):
        with suppress(FileNotFoundError):
            os.unlink(path + suffix)


def _create_with_page_size(path: str | None, page_size: int) -> None:
    if not path or not _new_file(path):
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.execute(f"PRAGMA page_size={int(page_size)}")
        conn.execute("VACUUM")  # writes the header, so the page size sticks
    finally:
        conn.close()


_PLACEHOLDER = "__beprepared_partition_placeholder__"
_MATERIALIZATION = DagsterEventType.ASSET_MATERIALIZATION.value


def _subset_planned(event: EventLogEntry) -> Any:
    """The `AssetMaterializationPlannedData` of a planned event over a partition subset, else None."""
    dagster_event = event.dagster_event
    if dagster_event is None or dagster_event.event_type != DagsterEventType.ASSET_MATERIALIZATION_PLANNED:
        return None
    planned = dagster_event.event_specific_data
    return planned if getattr(planned, "partitions_subset", None) is not None else None


def _expand_planned(event: EventLogEntry, row: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-partition planned rows a subset planned event stands for (index rows), or [] for any other
    event. Each row's event is the planned event Dagster would have logged for that partition alone."""
    planned = _subset_planned(event)
    if planned is None:
        return []
    keys = list(planned.partitions_subset.get_partition_keys())
    dagster_event = event.get_dagster_event()
    one = planned._replace(partition=_PLACEHOLDER, partitions_subset=None)
    text = serialize_value(event._replace(dagster_event=dagster_event._replace(event_specific_data=one)))
    template = _fragments(text, [_PLACEHOLDER])
    if template is None:  # the placeholder must stand for the partition only
        raise DagsterInvariantViolationError("planned event template: placeholder not unique")
    return [{**row, "event": _fill(template, [k]), "partition": k} for k in keys]


def _asset_key(dagster_event: Any) -> Any:
    """`dagster_event.asset_key`, read straight from a materialization (the property re-checks the event's
    type on every call: thousands per batch)."""
    if dagster_event.event_type_value == _MATERIALIZATION:
        return dagster_event.event_specific_data.materialization.asset_key
    return dagster_event.asset_key


class _Serializer:
    """Rows of a batch: Dagster's serialization, reusing the text of a step's first materialization for the
    others (see the module docstring)."""

    def __init__(self, storage: BatchedSqliteEventLogStorage) -> None:
        self.storage = storage
        self.templates: dict[tuple[Any, Any], Any] = {}

    def rows(self, events: Sequence[EventLogEntry]) -> list[dict[str, Any]]:
        return [self.row(event) for event in events]

    def row(self, event: EventLogEntry) -> dict[str, Any]:
        dagster_event = event.dagster_event
        if dagster_event is None or dagster_event.event_type_value != _MATERIALIZATION:
            return self.storage._event_to_row(event)
        materialization = dagster_event.event_specific_data.materialization
        key = (dagster_event.step_key, materialization.asset_key)
        template = self.templates.get(key)
        if template is None:
            row = self.storage._event_to_row(event)
            self.templates[key] = _template(event, row) or False
            return row
        if template is False or not _same_but_materialization(event, template[0]):
            return self.storage._event_to_row(event)
        first, head, middle, tail, row = template
        body = self.materialization_text(materialization)
        return {
            **row,
            "event": head + body + middle + repr(event.timestamp) + tail,
            "timestamp": self.storage._event_insert_timestamp(event),
            "partition": materialization.partition,
        }

    def materialization_text(self, materialization: Any) -> str:
        """Dagster's text for an AssetMaterialization whose metadata values are all text (an image's own
        metadata): filled into a template made from the first one with the same keys; others: Dagster."""
        key = _text_shape(materialization)
        if key is None:
            return serialize_value(materialization)
        template = self.templates.get(key)
        if template is None:
            template = self.templates[key] = _holes_template(materialization) or False
        if template is False:
            return serialize_value(materialization)
        values = [materialization.partition, *(v.text for v in materialization.metadata.values())]
        values += list((materialization.tags or {}).values())
        return _fill(template, values)


def _text_shape(materialization: Any) -> tuple | None:
    """What a materialization shares with others that one template serves: everything but the partition,
    the text of its metadata values and the values of its tags (None: not of that kind)."""
    metadata = materialization.metadata or {}
    tags = materialization.tags or {}
    if not isinstance(materialization.partition, str):
        return None
    text = _text_value_type()
    for v in metadata.values():
        if type(v) is not text or type(v.text) is not str:
            return None
    for v in tags.values():
        if type(v) is not str:
            return None
    return (
        "materialization",
        materialization.asset_key,
        materialization.description,
        tuple(metadata),
        tuple(tags),
    )


@functools.cache
def _text_value_type() -> type:
    from dagster._core.definitions.metadata.metadata_value import TextMetadataValue

    return TextMetadataValue


def _holes_template(materialization: Any) -> tuple[list[str], list[int]] | None:
    """(text fragments, which value goes between each pair) from the materialization serialized with a
    placeholder in every hole: partition, metadata texts, tag values."""
    from dagster._core.definitions.metadata.metadata_value import TextMetadataValue

    metadata, tags = materialization.metadata or {}, materialization.tags or {}
    count = 1 + len(metadata) + len(tags)
    tokens = [f"__beprepared_hole_{i}__" for i in range(count)]
    holed = materialization._replace(
        partition=tokens[0],
        metadata={k: TextMetadataValue(tokens[1 + i]) for i, k in enumerate(metadata)},
        tags={k: tokens[1 + len(metadata) + i] for i, k in enumerate(tags)}
        if materialization.tags
        else materialization.tags,
    )
    return _fragments(serialize_value(holed), tokens)


def _fragments(text: str, tokens: list[str]) -> tuple[list[str], list[int]] | None:
    """`text` cut at each token (each must occur exactly once): (the pieces between, which token's value goes
    after each piece), for `_fill`."""
    if any(text.count(t) != 1 for t in tokens):
        return None
    found = sorted((text.find(t), i) for i, t in enumerate(tokens))
    fragments, start = [], 0
    for position, i in found:
        fragments.append(text[start:position])
        start = position + len(tokens[i])
    fragments.append(text[start:])
    return fragments, [i for _, i in found]


def _fill(template: tuple[list[str], list[int]], values: list[str]) -> str:
    """The template's text with each token replaced by its value as a JSON string's contents (printable
    ASCII without quotes or backslashes, e.g. a partition key, is its own JSON: `json.dumps` is skipped)."""
    fragments, order = template
    out = [fragments[0]]
    for position, fragment in zip(order, fragments[1:]):  # noqa: B905 (one more fragment than holes)
        value = values[position]
        if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
            out.append(value)
        else:
            out.append(json.dumps(value)[1:-1])
        out.append(fragment)
    return "".join(out)


def _template(event: EventLogEntry, row: dict[str, Any]) -> tuple | None:
    """(event, text before its materialization, text between it and the timestamp, after, row)."""
    text = row["event"]
    body = serialize_value(event.get_dagster_event().event_specific_data.materialization)
    stamp = '"timestamp": ' + repr(event.timestamp)
    if text.count(body) != 1:
        return None
    head, rest = text.split(body)
    if rest.count(stamp) != 1 or not math.isfinite(event.timestamp):
        return None
    middle, tail = rest.split(stamp)
    return event, head, middle + '"timestamp": ', tail, row


def _same_but_materialization(event: EventLogEntry, first: EventLogEntry) -> bool:
    """Whether `event` equals `first` once its timestamp and materialization are set to `first`'s."""
    dagster_event = event.dagster_event
    data = dagster_event.event_specific_data
    first_data = first.dagster_event.event_specific_data
    # A finite float's JSON is its repr, which `row` writes into the template.
    if type(data) is not type(first_data) or not math.isfinite(event.timestamp):
        return False
    same = data._replace(materialization=first_data.materialization)
    return (
        event._replace(
            timestamp=first.timestamp, dagster_event=dagster_event._replace(event_specific_data=same)
        )
        == first
    )


def _insert_returning_ids(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert event rows with one executemany; their ids, in row order (asset records and tags point at them).

    Under the write lock taken by BEGIN IMMEDIATE, SQLite gives each row of a rowid table max(rowid) + 1,
    so the rows get consecutive ids; the two max() reads prove it (when the table's largest id is 2^63-1,
    SQLite would pick random ids, the count would not match, and the batch would roll back). A RETURNING
    clause would cost one statement per row instead."""
    table = SqlEventLogStorageTable
    before = conn.execute(db.select(db.func.max(table.c.id))).scalar() or 0
    _insert_rows(conn, rows)
    after = conn.execute(db.select(db.func.max(table.c.id))).scalar() or 0
    if after - before != len(rows):
        raise DagsterInvariantViolationError(
            f"event_logs ids of a batch of {len(rows)} are not consecutive ({before} -> {after})"
        )
    return list(range(before + 1, after + 1))


_EVENT_COLUMNS = ("run_id", "event", "dagster_event_type", "timestamp", "step_key", "asset_key", "partition")
_INSERT_EVENTS = (
    f"INSERT INTO {SqlEventLogStorageTable.name} ({', '.join(_EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _EVENT_COLUMNS)})"
)

_INSERT_TAGS = (
    f"INSERT INTO {AssetEventTagsTable.name} (event_id, asset_key, key, value, event_timestamp) "
    "VALUES (?, ?, ?, ?, ?)"
)


def _insert_rows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """`event_logs` rows in one executemany on the driver, with the text SQLAlchemy's SQLite TIMESTAMP type
    stores (`_sqlite_timestamp`): the same rows as `conn.execute(SqlEventLogStorageTable.insert(), rows)`
    without compiling parameters row by row (checked byte for byte against Dagster's own writes)."""
    conn.exec_driver_sql(
        _INSERT_EVENTS,
        [
            (
                r["run_id"],
                r["event"],
                r["dagster_event_type"],
                _sqlite_timestamp(r["timestamp"]),
                r["step_key"],
                r["asset_key"],
                r["partition"],
            )
            for r in rows
        ],
    )


def _sqlite_timestamp(value: Any) -> Any:
    """SQLAlchemy's SQLite DATETIME storage format, "%Y-%m-%d %H:%M:%S.%f" (a naive UTC datetime here)."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        return value.isoformat(" ", "microseconds")  # the same text, formatted in C
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
    )


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
