"""Discovery: scan every Load folder of a workflow, update the file index, and return the image hashes that
are not partitions yet, in discovery order (so one tick's new images form one contiguous range)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from beprepared_dagster.errors import StoreError
from beprepared_dagster.nodes.load import Hashed, Load, prehash, scan_folder
from beprepared_dagster.store import files
from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster.workflow import Workflow


@dataclass
class Discovery:
    new_keys: list[str] = field(default_factory=list)
    files: int = 0
    hashed: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)


def load_nodes(workflow: Workflow) -> list[Load]:
    return [s.node for s in workflow.stages if isinstance(s.node, Load)]


def discover(
    store: WorkspaceStore,
    workflow: Workflow,
    existing: set[str],
    log: Any,
    prescan: PreScan | None = None,
    first: Callable[[Any], None] | None = None,
    last: Callable[[Any, list[str]], None] | None = None,
) -> Discovery:
    """Scan the Load folders: (size, mtime) index, new files hashed (or taken from `prescan`), index updated.
    `first(conn)` runs in the transaction that reads the first folder's index, `last(conn, new_keys)` in the
    one that writes the last folder's index (the caller's own reads and writes, without a connection of
    their own: each access attaches the file and checkpoints it when it ends; an exception from `last` leaves that folder's index as it was)."""
    result = Discovery()
    known = prescan.result() if prescan is not None else {}
    ordered: dict[str, None] = {}
    nodes = load_nodes(workflow)
    for i, node in enumerate(nodes):
        node.check_folder()
        root = str(node.dir)
        with store.db.connect() as conn:
            if first is not None:
                first(conn)
                first = None
            index = files.read_index(conn, root)
        scan = scan_folder(node.dir, index, log=log.warning, known=known.get(root))
        result.files += scan.files
        result.hashed += scan.hashed
        result.problems.extend(scan.problems)
        for key in scan.hashes:
            if key not in existing:
                ordered.setdefault(key, None)
        with store.db.connect() as conn:
            files.replace_index(conn, root, scan.changed, scan.removed)
            if last is not None and i == len(nodes) - 1:
                last(conn, list(ordered))
    result.new_keys = list(ordered)
    if not nodes and (first is not None or last is not None):  # no Load folder
        with store.db.connect() as conn:
            if first is not None:
                first(conn)
            if last is not None:
                last(conn, [])
    return result


class PreScan:
    """Hash a workflow's new files while the orchestration loads (importing Dagster and opening the instance
    take about as long as hashing a few thousand photos): a background thread walks the folders and hands
    the new files to child processes (`nodes.load.prehash`). Only a hint: `discover`
    still walks every folder under the workspace lock and uses a hash only for a file whose size and mtime
    are unchanged. Gives up quietly (no hints) when the workspace database is busy."""

    def __init__(self, store: WorkspaceStore, workflow: Workflow) -> None:
        self._hashed: dict[str, Hashed] = {}
        self._thread = threading.Thread(
            target=self._run, args=(store, load_nodes(workflow)), name="prescan", daemon=True
        )
        self._thread.start()

    def _run(self, store: WorkspaceStore, nodes: list[Load]) -> None:
        try:
            if not store.db.path.exists():
                indexes: dict[str, dict] = {str(n.dir): {} for n in nodes}
            else:
                with store.db.connect(lock_timeout=0) as conn:
                    indexes = {str(n.dir): files.read_index(conn, str(n.dir)) for n in nodes}
            for node in nodes:
                if node.dir.is_dir():
                    self._hashed[str(node.dir)] = prehash(
                        node.dir, indexes[str(node.dir)], processes=_processes()
                    )
        except (StoreError, OSError):
            self._hashed.clear()

    def result(self) -> dict[str, Hashed]:
        self._thread.join()
        return self._hashed


def _processes() -> int:
    """Hashing processes beside the imports: cores − 1 (at least 1, at most 4), so the main thread, whose
    imports and instance set-up are the critical path, keeps a core of its own."""
    return min(4, max(1, (os.cpu_count() or 2) - 1))
