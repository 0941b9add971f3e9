"""The label journal: every human decision is one appended row in a small SQLite file (WAL, synchronous=FULL,
autocommit), durable when `append` returns. The labeling app is its only writer; human stages read the latest
entry per (domain, kind, image) and mirror it into DuckDB's `labels` table when they materialize. HumanRank
(kind `rank`) reads every entry of its domain instead: each is one comparison (or the undo of one).

Why not DuckDB directly: DuckDB lets one process hold the file, and a click must never wait behind a run.
Why append-only: undo and re-label are new entries, so `kill -9` at any moment loses nothing acknowledged,
and "what changed since" is a comparison of ids.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beprepared_dagster.errors import StoreError

JOURNAL_NAME = "labels.sqlite"
KINDS = ("filter", "tag", "caption", "rank")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    domain TEXT NOT NULL,
    kind TEXT NOT NULL,
    image_id TEXT NOT NULL,
    value TEXT,                 -- JSON; NULL = the label was undone
    ts REAL NOT NULL,
    labeler TEXT,
    request_id TEXT UNIQUE      -- a client's retry of the same write is not a second entry
);
CREATE INDEX IF NOT EXISTS journal_latest ON journal (domain, kind, image_id, id);
"""


@dataclass(frozen=True)
class Label:
    id: int
    domain: str
    kind: str
    image_id: str
    value: dict[str, Any] | None
    ts: float
    labeler: str | None = None
    request_id: str | None = None


class LabelJournal:
    """Append-only label journal at `path` (created on first use). Safe across threads and processes."""

    def __init__(self, path: str | Path, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._ready = False

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"could not open the label journal {self.path}: {exc}") from exc
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            if not self._ready:
                conn.executescript(_SCHEMA)
                self._ready = True
            yield conn
        except sqlite3.Error as exc:
            raise StoreError(f"label journal {self.path}: {exc}") from exc
        finally:
            conn.close()

    def append(
        self,
        domain: str,
        kind: str,
        image_id: str,
        value: dict[str, Any] | None,
        *,
        labeler: str | None = None,
        request_id: str | None = None,
    ) -> int:
        """Record one decision; durable on return. Returns its journal id (the existing one for a repeated
        `request_id`)."""
        return self.append_many([(domain, kind, image_id, value)], labeler=labeler, request_ids=[request_id])[
            0
        ]

    def append_many(
        self,
        entries: list[tuple[str, str, str, dict[str, Any] | None]],
        *,
        labeler: str | None = None,
        request_ids: list[str | None] | None = None,
    ) -> list[int]:
        """Record several decisions in one transaction; all are durable on return, or none."""
        request_ids = request_ids or [None] * len(entries)
        for domain, kind, image_id, _ in entries:
            _check(domain, kind, image_id)
        now = time.time()
        ids = []
        with self._lock, self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for (domain, kind, image_id, value), request_id in zip(entries, request_ids, strict=True):
                    ids.append(self._insert(conn, domain, kind, image_id, value, now, labeler, request_id))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return ids

    @staticmethod
    def _insert(
        conn: sqlite3.Connection,
        domain: str,
        kind: str,
        image_id: str,
        value: dict[str, Any] | None,
        now: float,
        labeler: str | None,
        request_id: str | None,
    ) -> int:
        if request_id is not None:
            row = conn.execute("SELECT id FROM journal WHERE request_id = ?", [request_id]).fetchone()
            if row:
                return int(row[0])
        text = None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))
        cursor = conn.execute(
            "INSERT INTO journal (domain, kind, image_id, value, ts, labeler, request_id) VALUES (?,?,?,?,?,?,?)",
            [domain, kind, image_id, text, now, labeler, request_id],
        )
        return int(cursor.lastrowid or 0)

    def latest(self, domain: str, kind: str, image_ids: Iterable[str] | None = None) -> dict[str, Label]:
        """The latest entry per image of (domain, kind), including undone ones (value None)."""
        sql = (
            "SELECT j.id, j.domain, j.kind, j.image_id, j.value, j.ts, j.labeler FROM journal j "
            "JOIN (SELECT max(id) AS id FROM journal WHERE domain = ? AND kind = ? {filter} GROUP BY image_id) m "
            "ON j.id = m.id"
        )
        if not self.path.exists():
            return {}
        with self._connect() as conn:
            if image_ids is None:
                rows = conn.execute(sql.format(filter=""), [domain, kind]).fetchall()
            else:
                conn.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (image_id TEXT PRIMARY KEY)")
                conn.execute("DELETE FROM wanted")
                conn.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", [(i,) for i in image_ids])
                rows = conn.execute(
                    sql.format(filter="AND image_id IN (SELECT image_id FROM wanted)"), [domain, kind]
                ).fetchall()
        return {row[3]: _label(row) for row in rows}

    def since(self, after_id: int, limit: int | None = None) -> list[Label]:
        """Entries with id > `after_id`, oldest first."""
        if not self.path.exists():
            return []
        sql = "SELECT id, domain, kind, image_id, value, ts, labeler, request_id FROM journal WHERE id > ? ORDER BY id"
        params: list[Any] = [after_id]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._connect() as conn:
            return [_label(row) for row in conn.execute(sql, params).fetchall()]

    def entries(self, domain: str, kind: str) -> list[Label]:
        """Every entry of (domain, kind), oldest first, with request ids (HumanRank keeps all comparisons)."""
        if not self.path.exists():
            return []
        sql = (
            "SELECT id, domain, kind, image_id, value, ts, labeler, request_id FROM journal "
            "WHERE domain = ? AND kind = ? ORDER BY id"
        )
        with self._connect() as conn:
            return [_label(row) for row in conn.execute(sql, [domain, kind]).fetchall()]

    def max_id(self) -> int:
        if not self.path.exists():
            return 0
        with self._connect() as conn:
            return int(conn.execute("SELECT coalesce(max(id), 0) FROM journal").fetchone()[0])

    def domains(self) -> list[tuple[str, str, int]]:
        """(domain, kind, images labeled) for every (domain, kind) in the journal."""
        if not self.path.exists():
            return []
        with self._connect() as conn:
            return conn.execute(
                "SELECT domain, kind, count(DISTINCT image_id) FROM journal GROUP BY domain, kind ORDER BY 1, 2"
            ).fetchall()


def _label(row: tuple) -> Label:
    value = json.loads(row[4]) if row[4] else None
    return Label(int(row[0]), row[1], row[2], row[3], value, row[5], row[6], row[7] if len(row) > 7 else None)


def _check(domain: str, kind: str, image_id: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"label kind {kind!r} is not one of {', '.join(KINDS)}")
    if not isinstance(domain, str) or not domain or len(domain) > 200:
        raise ValueError(f"label domain {domain!r} must be a non-empty string")
    if (
        not isinstance(image_id, str)
        or len(image_id) != 64
        or not all(c in "0123456789abcdef" for c in image_id)
    ):
        raise ValueError(f"image id {image_id!r} is not a SHA-256 hex digest")


def journal_for(workspace_root: str | Path) -> LabelJournal:
    return LabelJournal(Path(workspace_root) / JOURNAL_NAME)
