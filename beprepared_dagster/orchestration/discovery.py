"""Discovery: scan every Load folder of a workflow, update the file index, and return the image hashes that
are not partitions yet, in discovery order (so one tick's new images form one contiguous range)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from beprepared_dagster.nodes.load import Load, scan_folder
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


def discover(store: WorkspaceStore, workflow: Workflow, existing: set[str], log: Any) -> Discovery:
    result = Discovery()
    ordered: dict[str, None] = {}
    for node in load_nodes(workflow):
        node.check_folder()
        root = str(node.dir)
        with store.db.connect() as conn:
            index = files.read_index(conn, root)
        scan = scan_folder(node.dir, index, log=log.warning)
        with store.db.connect() as conn:
            files.replace_index(conn, root, scan.changed, scan.removed)
        result.files += scan.files
        result.hashed += scan.hashed
        result.problems.extend(scan.problems)
        for key in scan.hashes:
            if key not in existing:
                ordered.setdefault(key, None)
    result.new_keys = list(ordered)
    return result
