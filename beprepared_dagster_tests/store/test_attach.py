"""The store opens its file by attaching it to an in-memory DuckDB kept for the process (`store.attach`):
the file must still be let go the moment the last access ends, whatever an access attached or how it ended,
threads must share it, and a forked child must be able to use the store on its own.

Real DuckDB files; "another process" is a real one (`python -c`)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from contextlib import nullcontext
from pathlib import Path

import pytest

from beprepared_dagster.store import attach
from beprepared_dagster.store.db import Database
from beprepared_dagster_tests.store.test_db import opened_by_another_process


def test_threads_share_the_file_and_the_last_one_out_lets_it_go(tmp_path: Path):
    path = tmp_path / "beprepared.duckdb"
    db = Database(path)
    db.schema_version()
    inside, release = threading.Barrier(2), threading.Event()
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            with db.connect() as conn:
                conn.execute("INSERT INTO fingerprints VALUES (?, 'Node', 1, '{}')", [name])
                inside.wait(timeout=30)
                release.wait(timeout=30)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    threads[0].join(timeout=0.5)
    assert attach.host(path).users == 2  # both inside at once, one attachment
    assert not opened_by_another_process(path)  # held while anyone is inside
    release.set()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert attach.host(path).users == 0
    assert opened_by_another_process(path)
    with db.connect() as conn:
        assert sorted(r[0] for r in conn.execute("SELECT fingerprint FROM fingerprints").fetchall()) == [
            "a",
            "b",
        ]


@pytest.mark.parametrize("ends", ["committed", "failed"])
def test_a_database_an_access_attached_is_let_go_with_it(tmp_path: Path, ends: str):
    """An access that attaches another workspace (an import) and ends without detaching it, by returning or
    by an error: the other file is let go with the access, as closing a connection did."""
    other = tmp_path / "other.duckdb"
    Database(other).schema_version()
    db = Database(tmp_path / "beprepared.duckdb")
    quoted = str(other).replace("'", "''")
    expected = pytest.raises(RuntimeError, match="midway") if ends == "failed" else nullcontext()
    with expected, db.connect() as conn:
        conn.execute(f"ATTACH '{quoted}' AS src (READ_ONLY)")
        assert conn.execute("SELECT count(*) FROM src.schema_migrations").fetchone()[0] > 0
        if ends == "failed":
            raise RuntimeError("midway")
    assert opened_by_another_process(other)
    assert opened_by_another_process(tmp_path / "beprepared.duckdb")


def test_a_failed_access_does_not_keep_the_file(tmp_path: Path):
    path = tmp_path / "beprepared.duckdb"
    db = Database(path)
    with pytest.raises(Exception, match="no_such_table"), db.connect() as conn:
        conn.execute("SELECT * FROM no_such_table")
    assert attach.host(path).users == 0
    assert opened_by_another_process(path)


def test_a_path_with_a_quote_in_it(tmp_path: Path):
    path = tmp_path / "it's here" / "beprepared.duckdb"
    db = Database(path)
    with db.connect() as conn:
        conn.execute("INSERT INTO fingerprints VALUES ('x', 'Node', 1, '{}')")
    assert path.is_file()
    assert opened_by_another_process(path)


FORKING = """
import os, sys, traceback
from beprepared_dagster.store import attach
from beprepared_dagster.store.db import Database
from beprepared_dagster_tests.store.test_db import opened_by_another_process

path = sys.argv[1]
db = Database(path, lock_timeout=30)
with db.connect() as conn:
    conn.execute("INSERT INTO fingerprints VALUES ('parent', 'Node', 1, '{}')")
parents = attach.host(path)
assert parents.conn is not None
pid = os.fork()
if pid == 0:
    code = 1
    try:
        assert attach.host(path) is not parents
        with Database(path, lock_timeout=30).connect() as conn:
            conn.execute("INSERT INTO fingerprints VALUES ('child', 'Node', 1, '{}')")
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, "the child failed"
with db.connect() as conn:
    print(",".join(sorted(r[0] for r in conn.execute("SELECT fingerprint FROM fingerprints").fetchall())))
assert attach.host(path) is parents
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork exists on POSIX only (not on Windows)")
def test_a_forked_child_uses_the_store_on_its_own(tmp_path: Path):
    """The parent has its host (an instance, used before) when it forks; the child gets one of its own and
    writes, and the parent goes on using its own afterwards. (A child forked while the parent is inside an
    access cannot open the file at all: DuckDB's registry of open files is copied with the process.) In a
    process of its own: DuckDB is not fork-safe when another thread is inside it at the fork."""
    result = subprocess.run(
        [sys.executable, "-c", FORKING, str(tmp_path / "beprepared.duckdb")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "child,parent"


def test_many_workspaces_in_one_process_keep_a_few_instances_open(tmp_path: Path):
    """A process that touches many workspaces (a test session, a code server) keeps only the most recently
    used few instances; a workspace whose instance was closed opens again on its next access."""
    dbs = [Database(tmp_path / f"ws{i}" / "beprepared.duckdb") for i in range(attach.KEEP_IDLE + 4)]
    for i, db in enumerate(dbs):
        with db.connect() as conn:
            conn.execute("INSERT INTO fingerprints VALUES (?, 'Node', 1, '{}')", [f"fp{i}"])
    hosts = [attach.host(db.path) for db in dbs]
    assert sum(h.conn is not None for h in hosts) <= attach.KEEP_IDLE + 1
    assert hosts[0].conn is None  # the oldest one's instance was closed
    with dbs[0].connect() as conn:
        assert conn.execute("SELECT fingerprint FROM fingerprints").fetchall() == [("fp0",)]
    assert opened_by_another_process(dbs[0].path)
