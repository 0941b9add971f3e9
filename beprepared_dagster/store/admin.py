"""What `beprepared db list / clear / import` do to a workspace store (the CLI is a thin layer over this).

Two kinds of stored property, each with a name a glob can match (case-insensitively):
- computed results: the node cache and stage rows of one node fingerprint, named after the node type
  (`FilterBySize`, `ConvertFormat`, …); a fingerprint prefix matches too;
- human labels: the label journal's latest values of one (domain, kind), named like the original's keys
  (`humanfilter`, `humantag`, `humancaption`).
"""

from __future__ import annotations

import fnmatch
import json
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beprepared_dagster.errors import StoreError
from beprepared_dagster.store import legacy
from beprepared_dagster.store.labels import JOURNAL_NAME
from beprepared_dagster.store.objects import REF_SUFFIX, ChangedFile, is_object_id
from beprepared_dagster.store.workspace import WorkspaceStore

LABEL_NAMES = {kind: name for name, kind in legacy.LABEL_SCOPES.items()}
Progress = Callable[[int, int, str], None]
_CHUNK = 5000
CLEARED = "cleared"  # the fingerprint of stage rows whose results `clear` removed: matches no node


def matches(name: str, pattern: str) -> bool:
    """Case-insensitive glob match of a property name (`HumanTag*` matches `humantag`)."""
    return fnmatch.fnmatchcase(name.lower(), pattern.lower())


@dataclass
class ComputedEntry:
    """Computed results of one node fingerprint: cached outcomes and per-stage rows."""

    name: str
    fingerprint: str
    params: dict[str, Any]
    results: int
    stage_rows: int
    stages: list[str]


@dataclass
class LabelEntry:
    """The live (not undone) human labels of one (domain, kind), with a breakdown such as kept/rejected."""

    name: str
    domain: str
    kind: str
    labeled: int
    breakdown: dict[str, int]


def list_computed(
    store: WorkspaceStore, pattern: str = "*", aliases: dict[str, str] | None = None
) -> list[ComputedEntry]:
    """Computed results whose node name (or fingerprint) matches `pattern`, by name. `aliases` names
    fingerprints that the `fingerprints` table does not describe (e.g. Load's probe)."""
    if not store.db.path.exists():
        return []
    with store.db.connect() as conn:
        rows = conn.execute(
            """
            WITH c AS (SELECT fingerprint, count(*) AS n FROM node_cache GROUP BY fingerprint),
            s AS (SELECT fingerprint, count(DISTINCT (workflow, image_id)) AS n,
                         list(DISTINCT workflow || '/' || stage ORDER BY workflow || '/' || stage) AS st
                  FROM stage_rows WHERE fingerprint <> ? GROUP BY fingerprint)
            SELECT coalesce(c.fingerprint, s.fingerprint) AS fp, f.node, f.params,
                   coalesce(c.n, 0), coalesce(s.n, 0), coalesce(s.st, [])
            FROM c FULL OUTER JOIN s ON c.fingerprint = s.fingerprint
            LEFT JOIN fingerprints f ON f.fingerprint = coalesce(c.fingerprint, s.fingerprint)
            """,
            [CLEARED],
        ).fetchall()
    entries = [
        ComputedEntry(_name(fp, node, aliases), fp, json.loads(params) if params else {}, n, rows_, list(st))
        for fp, node, params, n, rows_, st in rows
    ]
    chosen = [e for e in entries if _wanted(e.name, e.fingerprint, pattern)]
    return sorted(chosen, key=lambda e: (e.name.lower(), e.fingerprint))


def _wanted(name: str, fingerprint: str, pattern: str) -> bool:
    return matches(name, pattern) or fnmatch.fnmatchcase(fingerprint, pattern.lower())


def _name(fingerprint: str, node: str | None, aliases: dict[str, str] | None) -> str:
    return node or (aliases or {}).get(fingerprint) or "unknown"


def list_labels(store: WorkspaceStore, pattern: str = "*", domain: str | None = None) -> list[LabelEntry]:
    """Human labels per (domain, kind) whose name matches `pattern`, optionally of one domain only."""
    entries = []
    for label_domain, kind, _ in store.journal.domains():
        name = LABEL_NAMES.get(kind, kind)
        if (domain is not None and label_domain != domain) or not matches(name, pattern):
            continue
        live = [label.value for label in store.journal.latest(label_domain, kind).values() if label.value]
        if live:
            entries.append(LabelEntry(name, label_domain, kind, len(live), _breakdown(kind, live)))
    return entries


def _breakdown(kind: str, values: list[dict[str, Any]]) -> dict[str, int]:
    if kind == "filter":
        kept = sum(1 for v in values if v.get("keep"))
        return {"kept": kept, "rejected": len(values) - kept}
    if kind == "tag":
        return {"rejected": sum(1 for v in values if v.get("rejected"))}
    return {}


@dataclass
class Cleared:
    """What `clear` removed."""

    results: int = 0
    stage_rows: int = 0
    labels: int = 0


def clear(store: WorkspaceStore, computed: list[ComputedEntry], labels: list[LabelEntry]) -> Cleared:
    """Delete the cached results and mark the stage rows made with them as made by no fingerprint, so those
    stages run again; undo the labels (journal entries with value None: the history stays, and the label
    sensor sees the change).

    Stage rows are re-marked rather than deleted: downstream stages keep reading them until the rerun, and
    a rerun that yields the same rows keeps their timestamps, so nothing below reruns for nothing."""
    done = Cleared()
    fingerprints = [e.fingerprint for e in computed]
    if fingerprints:
        where = "WHERE fingerprint IN (SELECT unnest(?::VARCHAR[]))"
        with store.db.connect() as conn:
            done.results = conn.execute(
                f"SELECT count(*) FROM node_cache {where}", [fingerprints]
            ).fetchone()[0]
            done.stage_rows = conn.execute(
                f"SELECT count(*) FROM stage_rows {where}", [fingerprints]
            ).fetchone()[0]
            conn.execute(f"DELETE FROM node_cache {where}", [fingerprints])
            conn.execute(f"UPDATE stage_rows SET fingerprint = ? {where}", [CLEARED, fingerprints])
    for entry in labels:
        live = [i for i, label in store.journal.latest(entry.domain, entry.kind).items() if label.value]
        for start in range(0, len(live), _CHUNK):
            batch = [(entry.domain, entry.kind, i, None) for i in live[start : start + _CHUNK]]
            store.journal.append_many(batch, labeler="db clear")
        done.labels += len(live)
    return done


@dataclass
class ImportReport:
    """What importing one source workspace did."""

    source: Path
    format: str
    objects_copied: int = 0
    objects_present: int = 0
    labels_imported: int = 0
    labels_present: int = 0
    labels_rekeyed: int = 0
    computed_imported: int = 0
    computed_present: int = 0
    skipped: Counter = field(default_factory=Counter)


def import_workspace(
    store: WorkspaceStore,
    source: str | Path,
    pattern: str = "*",
    domain: str | None = None,
    aliases: dict[str, str] | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import another workspace's objects (each verified against its SHA-256), human labels and computed
    results. `source` is a beprepared-dagster workspace folder or an original beprepared workspace (read
    without unpickling, see `store.legacy`). Existing labels are never overwritten: a differing one is
    counted as skipped. Idempotent."""
    root = Path(source).expanduser().resolve()
    if root == store.root:
        raise StoreError(f"{root} is the workspace being imported into")
    if not root.is_dir():
        raise StoreError(f"{root} does not exist or is not a folder")
    old = legacy.find_legacy(root)
    if (root / "beprepared.duckdb").is_file() or (root / JOURNAL_NAME).is_file():
        report = ImportReport(root, "beprepared-dagster")
        _copy_objects(store, root / "objects", report, progress)
        _merge_labels(store, _journal_labels(root / JOURNAL_NAME, pattern, domain), report)
        if domain is None and (root / "beprepared.duckdb").is_file():
            _import_cache(store, root / "beprepared.duckdb", pattern, aliases, report)
    elif old is not None:
        report = ImportReport(root, "original beprepared")
        _copy_objects(store, old / "objects", report, progress)
        scan = legacy.read_legacy(old, lambda name: matches(name, pattern), domain)
        report.skipped.update(scan.skipped)
        report.labels_rekeyed = scan.rekeyed
        _merge_labels(store, [(x.domain, x.kind, x.image_id, x.value) for x in scan.labels], report)
    else:
        raise StoreError(
            f"{root} is not a workspace: no beprepared.duckdb or {JOURNAL_NAME} (beprepared-dagster), "
            "no _beprepared/db.sqlite3 (original beprepared)"
        )
    return report


def _copy_objects(
    store: WorkspaceStore, folder: Path, report: ImportReport, progress: Progress | None
) -> None:
    for object_id, ref in store.objects.references(folder):  # the other store's reference index
        if store.objects.has(object_id):
            report.objects_present += 1
        elif store.objects.adopt(object_id, ref):
            report.objects_copied += 1
        else:
            report.skipped["reference to a source file that changed or is gone"] += 1
    paths = sorted(p for p in folder.glob("??/??/*") if p.is_file()) if folder.is_dir() else []
    for done, path in enumerate(paths, 1):
        if path.name.endswith(REF_SUFFIX) and is_object_id(path.name[: -len(REF_SUFFIX)]):
            if store.objects.has(path.name[: -len(REF_SUFFIX)]):
                report.objects_present += 1
            elif store.objects.adopt_ref(path):
                report.objects_copied += 1
            else:
                report.skipped["reference to a source file that changed or is gone"] += 1
        elif not is_object_id(path.name):
            report.skipped["not an object file"] += 1
        elif store.objects.has(path.name):
            report.objects_present += 1
        else:
            try:
                store.objects.put_file(path, expected=path.name)
                report.objects_copied += 1
            except ChangedFile:
                report.skipped["object whose content does not match its SHA-256 name"] += 1
            except OSError:
                report.skipped["unreadable object file"] += 1
        if progress and (done % 200 == 0 or done == len(paths)):
            progress(done, len(paths), "objects")


def _journal_labels(path: Path, pattern: str, domain: str | None) -> list[tuple[str, str, str, Any]]:
    """Latest live labels of another workspace's journal, read-only."""
    if not path.is_file():
        return []
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT domain, kind, image_id, value FROM journal WHERE id IN "
                "(SELECT max(id) FROM journal GROUP BY domain, kind, image_id) ORDER BY id"
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"could not read the label journal {path}: {exc}") from exc
    return [
        (d, k, i, json.loads(v))
        for d, k, i, v in rows
        if v and (domain is None or d == domain) and matches(LABEL_NAMES.get(k, k), pattern)
    ]


def _merge_labels(
    store: WorkspaceStore, labels: list[tuple[str, str, str, Any]], report: ImportReport
) -> None:
    """Append the labels the workspace lacks; one it has with another value is kept and counted."""
    labeler = f"import:{report.source}"
    groups: dict[tuple[str, str], list[tuple[str, Any]]] = {}
    for d, k, image_id, value in labels:
        groups.setdefault((d, k), []).append((image_id, value))
    for (d, k), items in groups.items():
        current = {i: label.value for i, label in store.journal.latest(d, k, [i for i, _ in items]).items()}
        new = []
        for image_id, value in items:
            if current.get(image_id) is None:
                new.append((d, k, image_id, value))
                current[image_id] = value
            elif current[image_id] == value:
                report.labels_present += 1
            else:
                report.skipped["label differs from the one already here (kept this workspace's)"] += 1
        for start in range(0, len(new), _CHUNK):
            store.journal.append_many(new[start : start + _CHUNK], labeler=labeler)
        report.labels_imported += len(new)


def _import_cache(
    store: WorkspaceStore, path: Path, pattern: str, aliases: dict[str, str] | None, report: ImportReport
) -> None:
    """Copy node-cache rows (and their fingerprint descriptions) of matching nodes; rows already here win."""
    quoted = str(path).replace("'", "''")
    with store.db.connect() as conn:
        try:
            conn.execute(f"ATTACH '{quoted}' AS src (READ_ONLY)")
        except Exception as exc:  # duckdb.Error, without importing duckdb here
            raise StoreError(f"could not open {path} (is a process using that workspace?): {exc}") from exc
        found = conn.execute(
            "SELECT c.fingerprint, any_value(f.node), count(*) FROM src.node_cache c "
            "LEFT JOIN src.fingerprints f USING (fingerprint) GROUP BY c.fingerprint"
        ).fetchall()
        chosen = {fp: n for fp, node, n in found if _wanted(_name(fp, node, aliases), fp, pattern)}
        before = conn.execute("SELECT count(*) FROM node_cache").fetchone()[0]
        for table, columns in (
            ("fingerprints", "node, version, params"),
            ("node_cache", "input, value, created_at"),
        ):
            conn.execute(
                f"INSERT OR IGNORE INTO {table} SELECT fingerprint, {columns} FROM src.{table} "
                "WHERE fingerprint IN (SELECT unnest(?::VARCHAR[]))",
                [list(chosen)],
            )
        added = conn.execute("SELECT count(*) FROM node_cache").fetchone()[0] - before
        conn.execute("DETACH src")
    report.computed_imported += added
    report.computed_present += sum(chosen.values()) - added
