"""The file index of each Load folder: path → (size, mtime, sha256), so a rescan hashes only what changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int | None
    mtime_ns: int | None
    sha256: str | None
    error: str | None = None


def read_index(conn: Any, root: str) -> dict[str, FileEntry]:
    rows = conn.execute(
        "SELECT path, size, mtime_ns, sha256, error FROM files WHERE root = ?", [root]
    ).fetchall()
    return {r[0]: FileEntry(*r) for r in rows}


def replace_index(conn: Any, root: str, entries: list[FileEntry], removed: list[str]) -> None:
    """Upsert changed entries and drop vanished paths, in bulk."""
    if removed:
        conn.execute(
            "DELETE FROM files WHERE root = ? AND path IN (SELECT unnest(?::VARCHAR[]))", [root, removed]
        )
    if entries:
        conn.execute(
            """
            INSERT OR REPLACE INTO files (root, path, size, mtime_ns, sha256, error, seen_at)
            SELECT ?, unnest(?::VARCHAR[]), unnest(?::BIGINT[]), unnest(?::BIGINT[]),
                   unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), current_timestamp
            """,
            [
                root,
                [e.path for e in entries],
                [e.size for e in entries],
                [e.mtime_ns for e in entries],
                [e.sha256 for e in entries],
                [e.error for e in entries],
            ],
        )


def paths_for(conn: Any, root: str, hashes: list[str]) -> dict[str, list[str]]:
    """The current paths under `root` holding each hash, sorted, so the first is stable."""
    return {sha: [e.path for e in entries] for sha, entries in entries_for(conn, root, hashes).items()}


def entries_for(conn: Any, root: str, hashes: list[str]) -> dict[str, list[FileEntry]]:
    """The index entries under `root` holding each hash (path, and the size and mtime it was hashed at),
    sorted by path, so the first is stable."""
    rows = conn.execute(
        """
        SELECT sha256, path, size, mtime_ns FROM files
        WHERE root = ? AND sha256 IN (SELECT unnest(?::VARCHAR[]))
        ORDER BY sha256, path
        """,
        [root, hashes],
    ).fetchall()
    result: dict[str, list[FileEntry]] = {}
    for sha, path, size, mtime_ns in rows:
        result.setdefault(sha, []).append(FileEntry(path, size, mtime_ns, sha))
    return result


def errors_under(conn: Any, root: str) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT path, error FROM files WHERE root = ? AND error IS NOT NULL ORDER BY path", [root]
    ).fetchall()
