"""DuckDB access: one short transaction per call, bounded retry when another process holds the file.

DuckDB lets one process write (and no other process even read) at a time, so no process keeps the file
open: every access opens, runs one transaction, and closes. "Opens" is an `ATTACH` to an in-memory instance
kept for the process, "closes" its `DETACH` (`store.attach`): the same file lock, taken and let go at the
same moments, for a few milliseconds instead of the ~30 ms of building a new instance per access.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from beprepared_dagster.errors import StoreError
from beprepared_dagster.store import attach
from beprepared_dagster.store.migrations import MIGRATIONS

log = logging.getLogger(__name__)
LOCK_TIMEOUT_ENV = "BEPREPARED_DB_LOCK_TIMEOUT"


def _is_lock_conflict(exc: Exception) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text or "conflict" in text.lower()


class Database:
    def __init__(self, path: Path, lock_timeout: float | None = None) -> None:
        self.path = Path(path)
        self.lock_timeout = (
            lock_timeout if lock_timeout is not None else float(os.environ.get(LOCK_TIMEOUT_ENV, "120"))
        )
        self._migrated = False
        self._lock = threading.Lock()

    @contextmanager
    def connect(self, lock_timeout: float | None = None) -> Iterator[Any]:
        """Yield a connection inside a transaction; commit on success, roll back on error, always close
        (the file is let go when the block ends, unless another thread of this process is inside one too).
        `lock_timeout`: how long to wait for another process's hold on the file (default: the database's).
        The first access of this object brings the schema up to date on the same connection."""
        import duckdb

        if not self._migrated:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._open(lock_timeout)
        try:
            if not self._migrated:
                self._migrate(conn)
            conn.execute("BEGIN TRANSACTION")
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            with suppress(duckdb.Error):
                conn.execute("ROLLBACK")
            raise
        finally:
            try:
                conn.close()
            finally:
                self._close()

    def _open(self, lock_timeout: float | None = None) -> Any:
        import duckdb

        timeout = self.lock_timeout if lock_timeout is None else lock_timeout
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            try:
                return attach.host(self.path).acquire()
            except duckdb.ResourceInUseException as exc:  # DuckDB's registry of open files says so
                raise StoreError(
                    f"could not open {self.path}: {exc}. (A process forked while its parent had the file "
                    "open cannot open it: start such processes with the 'spawn' method.)"
                ) from exc
            except (duckdb.IOException, duckdb.TransactionException) as exc:
                if not _is_lock_conflict(exc):
                    raise StoreError(f"could not open {self.path}: {exc}") from exc
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"could not open {self.path} within {timeout:g}s: {exc}. Another process "
                        f"holds the workspace database; set {LOCK_TIMEOUT_ENV} to wait longer."
                    ) from exc
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 1.0)

    def _close(self) -> None:
        import duckdb

        try:
            attach.host(self.path).release()
        except duckdb.Error as exc:
            raise StoreError(f"could not close {self.path}: {exc}") from exc

    def _migrate(self, conn: Any) -> None:
        """Apply the migrations this file lacks, each in its own transaction (another process cannot have
        the file open meanwhile; this process's threads take turns)."""
        with self._lock:
            if self._migrated:
                return
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP DEFAULT current_timestamp)"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations").fetchall()}
            for version, name, sql in MIGRATIONS:
                if version in done:
                    continue
                conn.execute("BEGIN TRANSACTION")
                conn.execute(sql)
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])
                conn.execute("COMMIT")
                log.info("workspace %s: applied migration %d (%s)", self.path, version, name)
            self._migrated = True

    def schema_version(self) -> int:
        with self.connect() as conn:
            return conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
