"""The Load stage: make each discovered image an object of the store and probe it, in parallel.

Discovery (nodes/load.py `scan_folder`) already hashed every file and recorded the size and mtime it had.
Here each image becomes an object the way the workflow's storage mode says (`store.objects.add_source`: a
reference checked on every read, a copy-on-write clone, or a private copy) and is probed from its header and
its end (`imaging.probe_file`); probes are cached per object id, shared by every workflow. Both run on a
thread pool (file reads, hashing of clones and copies, and Pillow's decoders release the GIL) that goes on
while the results so far are stored, every second, in one transaction.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from beprepared_dagster.errors import BadImage
from beprepared_dagster.nodes import imaging
from beprepared_dagster.nodes.load import Load, probe_fingerprint
from beprepared_dagster.orchestration.executor import READ_WINDOW, WRITE_EVERY
from beprepared_dagster.store import cache, files, stages
from beprepared_dagster.store.files import FileEntry
from beprepared_dagster.store.objects import ChangedFile, ObjectChanged
from beprepared_dagster.store.stages import ABSENT, ERROR, KEPT, REJECTED, Row

if TYPE_CHECKING:
    from beprepared_dagster.orchestration.executor import StageExecutor, StageReport
    from beprepared_dagster.workflow import Stage


TASK_SIZE = 16  # images per task of the thread pool
# A window this small (a few new images) is read, loaded and stored in one transaction (each access
# checkpoints the file when it ends), a larger one in several, so the database is never held for long.
SMALL_WINDOW = 64


def workers() -> int:
    return max(2, min(16, (os.cpu_count() or 2) * 2))


def run_load(executor: StageExecutor, stage: Stage, keys: list[str], report: StageReport) -> None:
    node: Load = stage.node  # type: ignore[assignment]
    node.check_folder()
    root = str(node.dir)
    fingerprint = probe_fingerprint(node.verify)
    store, log = executor.store, executor.log
    mode = getattr(executor.workflow, "storage", "reference")
    how: dict[str, int] = {}
    progress = executor.progress(stage, len(keys))
    rows: list[Row] = []
    fresh: dict[str, Any] = {}
    written_at = time.monotonic()

    def store_rows(conn: Any = None) -> None:
        nonlocal rows, fresh, written_at
        report.computed += len(fresh)
        report.fresh_images += len(fresh)
        with nullcontext(conn) if conn is not None else store.db.connect() as conn:
            cache.store(conn, fingerprint, fresh)
            report.changed += stages.write_rows(
                conn, executor.workflow.name, stage.name, stage.fingerprint, executor.run_id, rows
            )
        for row in rows:
            report.add_row(row, stage.name)
            if row.status == ERROR:
                report.errors.append(row.image_id)
        progress.advance(len(rows))
        rows, fresh, written_at = [], {}, time.monotonic()

    def load(pool: ThreadPoolExecutor, window: list[str], entries: dict, cached: dict, conn: Any) -> None:
        """Load a window's images on the pool, storing results every WRITE_EVERY seconds and at the end (on
        `conn` when given: a small window is read, loaded and stored in one transaction)."""

        def some(part: list[str]) -> list[tuple[Row, Any, str, list]]:
            return [
                _load_one(store, node, stage.name, key, entries.get(key, []), cached.get(key), mode)
                for key in part
            ]

        # Small tasks (a task's hand-over costs about what loading a small image does), in order.
        parts = pool.map(some, [window[i : i + TASK_SIZE] for i in range(0, len(window), TASK_SIZE)])
        loaded = (outcome for part in parts for outcome in part)
        for key, (row, probe, added, messages) in zip(window, loaded, strict=True):
            for level, message in messages:
                getattr(log, level)(message)
            if probe is not None and key not in cached:
                fresh[key] = probe
            how[added] = how.get(added, 0) + 1
            rows.append(row)
            if conn is None and time.monotonic() - written_at >= WRITE_EVERY:
                store_rows()
        if rows:
            store_rows(conn)

    # The pool works through a whole window while this thread stores results every WRITE_EVERY seconds.
    with ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="load") as pool:
        for start in range(0, max(len(keys), 1), READ_WINDOW):  # one window even for no keys
            window = keys[start : start + READ_WINDOW]
            small = len(window) <= SMALL_WINDOW
            with store.db.connect() as conn:
                if not start:  # the files discovery could not read, said once (same transaction)
                    report.unreadable_files = files.errors_under(conn, root)
                    for path, problem in report.unreadable_files:
                        log.warning(f"skipped {path}: {problem}")
                entries = files.entries_for(conn, root, window)
                cached = cache.lookup(conn, fingerprint, window)
                report.cache_hits += sum(1 for k in window if k in cached and k in entries)
                if small:
                    load(pool, window, entries, cached, conn)
            if not small:
                load(pool, window, entries, cached, None)
    progress.finish()
    added = {k: n for k, n in how.items() if k not in ("", "stored")}
    if added:
        log.info(
            f"{stage.name}: " + ", ".join(f"{n} {k}" for k, n in sorted(added.items())) + f" ({mode} mode)"
        )


def _load_one(
    store: Any, node: Load, stage: str, key: str, entries: list[FileEntry], cached: Any, mode: str
) -> tuple[Row, Any, str, list[tuple[str, str]]]:
    """(row, probe or None, how the object was added, log lines) for one image."""
    messages: list[tuple[str, str]] = []
    if not entries:
        return Row(key, 0, ABSENT, f"not under {node.dir}", stage), None, "", messages
    entry, added, problem = _add(store, key, entries, mode)
    path = entry.path if entry is not None else None
    if entry is None:
        messages.append(("warning", f"skipped {entries[0].path}: {problem}"))
        return Row(key, 0, ERROR, problem, stage, {"original_path": entries[0].path}), None, "", messages
    if len(entries) > 1:
        others = ", ".join(e.path for e in entries[1:3] if e.path != path)
        messages.append(("info", f"{path}: {len(entries) - 1} byte-identical copies ({others}…) loaded once"))
    probe = cached
    if probe is None:
        try:
            probe = _probe(store, key, node.verify, entry if added == "referenced" else None)
        except (ObjectChanged, OSError) as exc:
            problem = f"unreadable: {exc}"
            messages.append(("warning", f"skipped {path}: {problem}"))
            return Row(key, 0, ERROR, problem, stage, {"original_path": path}), None, added, messages
    base = {"objectid": key, "original_path": path}
    if not probe["kept"]:
        messages.append(("warning", f"skipped {path}: {probe['reason']}"))
        return Row(key, 0, REJECTED, probe["reason"], stage, base), probe, added, messages
    return Row(key, 0, KEPT, None, None, {**base, **probe["info"]}), probe, added, messages


def _add(store: Any, key: str, entries: list[FileEntry], mode: str) -> tuple[FileEntry | None, str, str]:
    """Add the first file whose bytes still hash to `key`: (its index entry, how, problem)."""
    problem = "file vanished"
    for entry in entries:
        try:
            how = store.objects.add_source(entry.path, key, entry.size or 0, entry.mtime_ns or 0, mode)
            return entry, how, ""
        except ChangedFile:
            problem = "content changed since it was discovered (the new content gets its own image)"
        except OSError as exc:
            problem = f"unreadable: {exc.strerror or exc}"
    return None, "", problem


def _probe(store: Any, key: str, verify: str, entry: FileEntry | None) -> dict[str, Any]:
    """Probe the object. A source just referenced is opened by its path and checked against the size and
    mtime it was hashed at (what the reference records), which spares reading the reference back."""
    try:
        f = store.objects.open_checked(key) if entry is None else open(entry.path, "rb")  # noqa: SIM115
        with f:
            st = os.fstat(f.fileno())
            if entry is not None and (st.st_size, st.st_mtime_ns) != (entry.size, entry.mtime_ns):
                raise ObjectChanged(f"{entry.path}: changed while it was being loaded")
            return {"kept": True, "info": imaging.probe_file(f, st.st_size, verify)}
    except BadImage as exc:
        return {"kept": False, "reason": f"bad image: {exc}"}
