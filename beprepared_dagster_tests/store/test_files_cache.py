"""Unit tests of the file index (`store.files`) and the node cache (`store.cache`) against a real DuckDB file.

Not covered here: how discovery fills the index from a folder scan (nodes/test_load_scan.py) and how the
executor chooses cache keys (executor tests).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from beprepared_dagster.store import cache, files
from beprepared_dagster.store.db import Database
from beprepared_dagster.store.files import FileEntry

ROOT, OTHER = "/photos", "/other"
A, B, C = "a" * 64, "b" * 64, "c" * 64


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(tmp_path / "beprepared.duckdb")


def test_index_round_trip_and_removal(db: Database):
    entries = [
        FileEntry("/photos/x.jpg", 10, 1_700_000_000_123_456_789, A),
        FileEntry("/photos/名前.png", 2**40, 5, B),
        FileEntry("/photos/loop.jpg", None, None, None, "symlink loop"),
    ]
    with db.connect() as conn:
        files.replace_index(conn, ROOT, entries, [])
        files.replace_index(conn, OTHER, [FileEntry("/other/y.jpg", 1, 1, C)], [])
    with db.connect() as conn:
        assert files.read_index(conn, ROOT) == {e.path: e for e in entries}  # ns mtimes and big sizes intact
        files.replace_index(conn, ROOT, [FileEntry("/photos/x.jpg", 11, 6, C)], ["/photos/名前.png"])
    with db.connect() as conn:
        index = files.read_index(conn, ROOT)
        assert sorted(index) == ["/photos/loop.jpg", "/photos/x.jpg"]
        assert index["/photos/x.jpg"].sha256 == C
        assert list(files.read_index(conn, OTHER)) == ["/other/y.jpg"]


def test_paths_for_and_errors_under(db: Database):
    with db.connect() as conn:
        files.replace_index(
            conn,
            ROOT,
            [
                FileEntry("/photos/b/copy.jpg", 1, 1, A),
                FileEntry("/photos/a/orig.jpg", 1, 1, A),
                FileEntry("/photos/c.jpg", 1, 1, B),
                FileEntry("/photos/bad.jpg", None, None, None, "unreadable: permission denied"),
            ],
            [],
        )
        files.replace_index(conn, OTHER, [FileEntry("/other/z.jpg", 1, 1, C)], [])
    with db.connect() as conn:
        # Every path of a hash, sorted, so the first one is stable across runs.
        assert files.paths_for(conn, ROOT, [A, B, C]) == {
            A: ["/photos/a/orig.jpg", "/photos/b/copy.jpg"],
            B: ["/photos/c.jpg"],
        }
        assert files.errors_under(conn, ROOT) == [("/photos/bad.jpg", "unreadable: permission denied")]


def test_cache_store_and_lookup(db: Database):
    with db.connect() as conn:
        cache.store(
            conn,
            "fp1",
            {"in1": {"kept": True, "reason": None, "set": {"caption": "名前"}}, "in2": {"kept": False}},
        )
        cache.store(conn, "fp2", {"in1": {"kept": False, "reason": "other node"}})
    with db.connect() as conn:
        assert cache.lookup(conn, "fp1", ["in1", "in2", "missing"]) == {
            "in1": {"kept": True, "reason": None, "set": {"caption": "名前"}},
            "in2": {"kept": False},
        }
        assert cache.lookup(conn, "fp2", ["in1"]) == {"in1": {"kept": False, "reason": "other node"}}
        assert cache.lookup(conn, "fp1", []) == {}
        # Storing a key again replaces its value (one row per key).
        cache.store(conn, "fp1", {"in1": {"kept": False}})
        assert cache.lookup(conn, "fp1", ["in1"]) == {"in1": {"kept": False}}
        assert conn.execute("SELECT count(*) FROM node_cache WHERE fingerprint = 'fp1'").fetchone()[0] == 2


def test_fingerprint_description_is_written_once(db: Database):
    with db.connect() as conn:
        cache.describe(conn, "fp", "FilterBySize", 1, {"min_edge": 512})
        cache.describe(conn, "fp", "FilterBySize", 1, {"min_edge": 512})
        assert conn.execute("SELECT node, version, params FROM fingerprints").fetchall() == [
            ("FilterBySize", 1, '{"min_edge": 512}')
        ]
