"""Unit tests of `store.db.Database`: schema migrations, one transaction per `connect()`, and waiting for
(then giving up on) a DuckDB file locked by another process.

The other process is a real one (`python -c`, holding `duckdb.connect(path)`): DuckDB shares one database
instance per file inside a process, so a second connection in this process would not conflict.

Not covered here: concurrent writers inside one process (threads), a future migration 2 (there is only one),
and the contents written by the stores that use the database (test_stages.py, nodes/test_load_scan.py).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from beprepared_dagster.errors import StoreError
from beprepared_dagster.store.db import LOCK_TIMEOUT_ENV, Database
from beprepared_dagster.store.migrations import MIGRATIONS

HOLDER = textwrap.dedent(
    """
    import sys, time, duckdb
    conn = duckdb.connect(sys.argv[1])
    conn.execute("CREATE TABLE IF NOT EXISTS holder (x INTEGER)")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.close()
    print("released", flush=True)
    """
)


@contextmanager
def lock_held(path: Path, seconds: float) -> Iterator[subprocess.Popen]:
    """Another process holding a DuckDB write connection on `path` for `seconds` (from when it has it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line == "locked", (
            f"lock holder failed: {line!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        )
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()


def tables(path: Path) -> set[str]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    finally:
        conn.close()


# --- migrations ------------------------------------------------------------------------------------------


def test_first_connect_creates_the_schema_and_records_every_version(tmp_path: Path):
    path = tmp_path / "ws" / "beprepared.duckdb"  # the folder does not exist yet
    db = Database(path)
    assert db.schema_version() == len(MIGRATIONS)
    assert tables(path) >= {
        "schema_migrations",
        "files",
        "node_cache",
        "fingerprints",
        "stage_rows",
        "labels",
        "human_applied",
        "image_order",
    }
    conn = duckdb.connect(str(path), read_only=True)
    try:
        rows = conn.execute("SELECT version, name, applied_at FROM schema_migrations").fetchall()
    finally:
        conn.close()
    assert [(v, n) for v, n, _ in rows] == [(v, n) for v, n, _ in MIGRATIONS]
    assert rows[0][2] is not None


def test_migrations_are_applied_once(tmp_path: Path):
    path = tmp_path / "beprepared.duckdb"
    Database(path).schema_version()
    with Database(path).connect() as conn:
        conn.execute("INSERT INTO fingerprints VALUES ('fp', 'Node', 1, '{}')")
    # A new process (a new Database object) must not re-run migration 1 (it would fail or wipe data).
    db = Database(path)
    assert db.schema_version() == len(MIGRATIONS)
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("SELECT node FROM fingerprints").fetchall() == [("Node",)]


def test_migrations_are_numbered_in_order():
    versions = [v for v, _, _ in MIGRATIONS]
    assert versions == list(range(1, len(versions) + 1))


# --- transactions ----------------------------------------------------------------------------------------


def test_connect_commits_on_success_and_rolls_back_on_error(tmp_path: Path):
    db = Database(tmp_path / "beprepared.duckdb")
    with db.connect() as conn:
        conn.execute("INSERT INTO fingerprints VALUES ('kept', 'Node', 1, '{}')")
    with pytest.raises(RuntimeError, match="boom"), db.connect() as conn:
        conn.execute("INSERT INTO fingerprints VALUES ('lost', 'Node', 1, '{}')")
        raise RuntimeError("boom")
    with db.connect() as conn:
        assert conn.execute("SELECT fingerprint FROM fingerprints").fetchall() == [("kept",)]


def opened_by_another_process(path: Path) -> bool:
    """Whether a separate process can open the file for writing now."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; duckdb.connect(sys.argv[1]).close(); print('ok')",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout.strip() == "ok"


def test_connect_does_not_keep_the_file_open(tmp_path: Path):
    path = tmp_path / "beprepared.duckdb"
    db = Database(path)
    with db.connect() as conn:
        conn.execute("INSERT INTO fingerprints VALUES ('x', 'Node', 1, '{}')")
    assert opened_by_another_process(path)  # as soon as the block ends


# --- another process holding the lock --------------------------------------------------------------------


@pytest.mark.slow
def test_connect_waits_for_another_process_and_then_succeeds(tmp_path: Path):
    path = tmp_path / "beprepared.duckdb"
    db = Database(path, lock_timeout=30)
    with lock_held(path, 1.0) as holder:
        started = time.monotonic()
        with db.connect() as conn:
            waited = time.monotonic() - started
            conn.execute("INSERT INTO fingerprints VALUES ('x', 'Node', 1, '{}')")
        assert holder.wait(timeout=30) == 0
    assert 0.5 <= waited < 20, waited
    assert db.schema_version() == len(MIGRATIONS)
    # What the other process wrote is still there.
    assert "holder" in tables(path)


@pytest.mark.slow
def test_connect_gives_up_with_a_clear_store_error(tmp_path: Path):
    path = tmp_path / "beprepared.duckdb"
    Database(path).schema_version()  # an existing workspace
    db = Database(path, lock_timeout=0.5)
    with lock_held(path, 20):
        started = time.monotonic()
        with pytest.raises(StoreError) as info, db.connect():
            pass
        waited = time.monotonic() - started
    assert 0.4 <= waited < 5, waited
    message = str(info.value)
    assert str(path) in message
    assert "Another process holds the workspace database" in message
    assert LOCK_TIMEOUT_ENV in message


@pytest.mark.slow
def test_lock_timeout_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "beprepared.duckdb"
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "0.3")
    db = Database(path)
    with lock_held(path, 20):
        started = time.monotonic()
        with pytest.raises(StoreError):
            db.schema_version()
        assert time.monotonic() - started < 5


@pytest.mark.slow
def test_lock_timeout_zero_fails_immediately(tmp_path: Path):
    """`lock_timeout=0` means "do not wait", not "use the default of 120 s"."""
    path = tmp_path / "beprepared.duckdb"
    Database(path).schema_version()
    db = Database(path, lock_timeout=0)
    with lock_held(path, 3):
        started = time.monotonic()
        with pytest.raises(StoreError), db.connect():
            pass
        assert time.monotonic() - started < 2


def test_a_file_that_is_not_a_database_fails_at_once_without_blaming_a_lock(tmp_path: Path):
    path = tmp_path / "not-a-db.duckdb"
    path.write_bytes(b"this is not a duckdb file" * 100)
    db = Database(path, lock_timeout=30)
    started = time.monotonic()
    with pytest.raises(StoreError) as info:
        db.schema_version()
    assert time.monotonic() - started < 5  # not retried as if it were a lock conflict
    message = str(info.value)
    assert str(path) in message and "not a valid DuckDB database file" in message
    # The user must not be sent chasing another process or told to raise the lock timeout.
    assert "Another process holds" not in message
    assert LOCK_TIMEOUT_ENV not in message
