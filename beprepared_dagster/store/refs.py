"""The object store's references to users' source files: object id → (path, size, mtime_ns), in one SQLite
file beside the objects (`objects/refs.sqlite`).

One row per referenced image instead of one `<id>.ref` file in `objects/aa/bb/`: creating a folder and a
file per image was most of a cold Load's time (5,000 images: ~1.7 s of file-system metadata writes on the
2-core test machine, against ~0.3 s of row inserts). SQLite in WAL mode lets every process of a workspace
read while one writes (DuckDB would not: the workspace database is opened for one transaction at a time),
each process keeps one connection, shared by its threads under a lock. Writes commit one by one
(`synchronous=NORMAL`: a process crash loses nothing committed).

Workspaces written before keep their `.ref` files: `ObjectStore` reads a reference here first, then from
its file; every new or updated reference is written here.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

REFS_DB = "refs.sqlite"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS refs ("
    "object_id TEXT PRIMARY KEY, path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL"
    ") WITHOUT ROWID"
)
_BUSY_SECONDS = 60.0


class RefIndex:
    """References of one object store. Thread-safe; a forked child opens its own connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    def get(self, object_id: str) -> dict | None:
        """The reference of `object_id` ({"path", "size", "mtime_ns"}), or None."""
        row = self._query("SELECT path, size, mtime_ns FROM refs WHERE object_id = ?", (object_id,))
        return {"path": row[0], "size": row[1], "mtime_ns": row[2]} if row else None

    def has(self, object_id: str) -> bool:
        return self._query("SELECT 1 FROM refs WHERE object_id = ?", (object_id,)) is not None

    def put(self, object_id: str, ref: dict) -> None:
        """Record (or replace) a reference; committed when this returns."""
        with self._lock:
            conn = self._connection(create=True)
            assert conn is not None
            conn.execute(
                "INSERT OR REPLACE INTO refs VALUES (?, ?, ?, ?)",
                (object_id, ref["path"], int(ref["size"]), int(ref["mtime_ns"])),
            )

    def items(self) -> Iterator[tuple[str, dict]]:
        """Every reference (for importing another workspace's objects)."""
        with self._lock:
            conn = self._connection(create=False)
            rows = conn.execute("SELECT object_id, path, size, mtime_ns FROM refs").fetchall() if conn else []
        for object_id, path, size, mtime_ns in rows:
            yield object_id, {"path": path, "size": size, "mtime_ns": mtime_ns}

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def _query(self, sql: str, params: tuple) -> tuple | None:
        with self._lock:
            conn = self._connection(create=False)
            return conn.execute(sql, params).fetchone() if conn is not None else None

    def _connection(self, create: bool) -> sqlite3.Connection | None:
        """This process's connection; None when the file does not exist and `create` is False (a store that
        never referenced a file, or one from before this index)."""
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        self._conn = None  # inherited across a fork: never used in the child
        if not create and not self.path.is_file():
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=_BUSY_SECONDS, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(_SCHEMA)
        self._conn, self._pid = conn, os.getpid()
        return conn
