"""Opening a workspace database in ~2-9 ms instead of ~20-45 ms: attach it to an in-memory DuckDB kept for the
process, and detach it when the access ends.

`duckdb.connect(path)` builds a whole database instance (its catalog of built-in functions, its buffer
manager) each time, and a store access opens the file anew every time (no process may keep it open: see
`store.db`). `ATTACH` on a kept in-memory instance opens only the file; `DETACH` checkpoints and closes it and
lets go of DuckDB's file lock, exactly as closing a connection did, so another process can open the file the
moment an access ends.

One such "host" per database file and process. Threads of one process share the attachment (counted: the
last access to end detaches), as they shared one instance through DuckDB's own cache before. Anything an
access attached besides the workspace (`ATTACH ... AS src` of an import) is detached with it. A forked child
starts with no hosts of its own; the parent's are never used nor destroyed there (their destructor would
close files the parent still has open).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from contextlib import suppress
from typing import Any

ALIAS = "workspace"


class Host:
    """The in-memory instance one database file is attached to, and how many accesses use it now."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.conn: Any = None
        self.users = 0

    def acquire(self) -> Any:
        """A new connection whose default database is the attached file. Raises duckdb's error when the file
        cannot be attached (another process's lock, not a database): then nothing stays attached."""
        import duckdb

        with self.lock:
            if self.conn is None:
                # Spilled intermediate results go where a connection to the file puts them.
                self.conn = duckdb.connect(":memory:", config={"temp_directory": f"{self.path}.tmp"})
            if self.users == 0:
                quoted = self.path.replace("'", "''")
                self.conn.execute(f"ATTACH '{quoted}' AS {ALIAS}")
            self.users += 1
            try:
                cursor = self.conn.cursor()
                cursor.execute(f"USE {ALIAS}")
            except BaseException:
                self._release_locked()
                raise
            return cursor

    def release(self) -> None:
        """One access ended (its connection closed); the last one detaches the file."""
        with self.lock:
            self._release_locked()

    def _release_locked(self) -> None:
        self.users -= 1
        if self.users:
            return
        try:
            attached = self.conn.execute(
                "SELECT database_name FROM duckdb_databases() WHERE NOT internal AND database_name <> 'memory'"
            ).fetchall()
            for (name,) in attached:
                self.conn.execute(f'DETACH "{name}"')
        except Exception:
            # The file may still be attached: drop the whole instance, which closes (and checkpoints) it.
            conn, self.conn = self.conn, None
            with suppress(Exception):
                conn.close()
            raise


# Instances kept open while idle (each costs memory and DuckDB's worker threads). A process uses one workspace,
# or a few; a test session or a code server with many closes the least recently used idle ones' instances.
# A host itself (a path, a lock, a count) stays, so a file always has exactly one.
KEEP_IDLE = 4

_hosts: OrderedDict[str, Host] = OrderedDict()
_hosts_lock = threading.Lock()
_inherited: list[Any] = []  # a parent's instances in a forked child: kept alive, never used


def host(path: str | os.PathLike[str]) -> Host:
    key = os.path.realpath(path)
    with _hosts_lock:
        found = _hosts.get(key)
        if found is None:
            found = _hosts[key] = Host(key)
        _hosts.move_to_end(key)
        if found.conn is None:  # an instance is about to be made: the moment to close idle ones
            _close_idle(keep=found)
        return found


def _close_idle(keep: Host) -> None:
    """Close the instances of the least recently used hosts beyond KEEP_IDLE that nobody uses now."""
    open_hosts = [h for h in _hosts.values() if h.conn is not None and h is not keep]
    for old in open_hosts[: max(0, len(open_hosts) - KEEP_IDLE)]:
        if not old.lock.acquire(blocking=False):
            continue  # in use right now
        try:
            if not old.users and old.conn is not None:
                conn, old.conn = old.conn, None
                with suppress(Exception):
                    conn.close()
        finally:
            old.lock.release()


def _after_fork_in_child() -> None:
    """The child has one thread: locks a parent's thread held stay held, and the parent's attachments are
    the parent's. Start afresh, keeping the inherited instances from ever being destroyed here."""
    global _hosts_lock
    inherited = [h.conn for h in _hosts.values() if h.conn is not None]
    if inherited:
        import ctypes

        for conn in inherited:
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(conn))  # no destructor, even at interpreter exit
        _inherited.extend(inherited)
    _hosts.clear()
    _hosts_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
