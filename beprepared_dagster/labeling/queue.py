"""A human stage's queue: the images its upstream stage kept, in partition insertion order, the latest label of
each, and dataset-wide counts. Dagster-free and Gradio-free; reads DuckDB briefly and the label journal.

DuckDB allows one process at a time, so the upstream set is re-read only when a cheap signature query says it
changed, at most every `refresh_interval` seconds, and a read that cannot get the file in time keeps the last
snapshot (the caller reports `busy`) instead of making a person wait on a run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beprepared_dagster.errors import StoreError
from beprepared_dagster.nodes.base import HumanNode
from beprepared_dagster.store import order, stages
from beprepared_dagster.store.db import Database
from beprepared_dagster.store.labels import Label, LabelJournal
from beprepared_dagster.store.objects import is_object_id
from beprepared_dagster.workflow import Stage, Workflow


@dataclass(frozen=True)
class Item:
    """One image as the app shows it. `objectid` is the bytes to display (a conversion may have changed
    them); `image_id` is the identity labels are keyed by."""

    image_id: str
    objectid: str
    width: int | None = None
    height: int | None = None
    name: str | None = None
    text: str | None = None  # HumanCaption: the source caption

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.image_id,
            "obj": self.objectid,
            "w": self.width,
            "h": self.height,
            "name": self.name,
        }


@dataclass(frozen=True)
class Snapshot:
    items: tuple[Item, ...] = ()
    index: Mapping[str, int] = None  # type: ignore[assignment]
    version: int = 0

    def position(self, image_id: str | None) -> int | None:
        return None if image_id is None or self.index is None else self.index.get(image_id)


class JournalView:
    """The latest label per (domain, kind, image) of one journal, kept current by reading only new entries."""

    def __init__(self, journal: LabelJournal) -> None:
        self.journal = journal
        self.position = 0
        self._latest: dict[tuple[str, str], dict[str, Label]] = {}
        self._log: dict[tuple[str, str], list[tuple[int, str]]] = {}
        self._entries: dict[tuple[str, str], list[Label]] = {}  # every entry of kind rank (comparisons)
        self._lock = threading.Lock()

    def refresh(self) -> int:
        """Fold in entries appended since the last call; returns the journal position seen."""
        with self._lock:
            while True:
                batch = self.journal.since(self.position, limit=20000)
                for label in batch:
                    key = (label.domain, label.kind)
                    self._latest.setdefault(key, {})[label.image_id] = label
                    self._log.setdefault(key, []).append((label.id, label.image_id))
                    if label.kind == "rank":
                        self._entries.setdefault(key, []).append(label)
                    self.position = label.id
                if len(batch) < 20000:
                    return self.position

    def latest(self, domain: str, kind: str) -> dict[str, Label]:
        return self._latest.get((domain, kind), {})

    def entries(self, domain: str, kind: str) -> list[Label]:
        """Every entry of (domain, kind) seen so far, oldest first (kept for kind `rank` only)."""
        return self._entries.get((domain, kind), [])

    def changed_since(self, domain: str, kind: str, after_id: int) -> list[Label]:
        """The current label of every image of (domain, kind) that got an entry after `after_id`."""
        log, latest = self._log.get((domain, kind), []), self.latest(domain, kind)
        seen: dict[str, None] = {}
        for entry_id, image_id in reversed(log):
            if entry_id <= after_id:
                break
            seen.setdefault(image_id, None)
        return [latest[i] for i in reversed(seen)]


class StageQueue:
    """The queue of one human stage of one workflow."""

    def __init__(
        self,
        workflow: Workflow,
        stage: Stage,
        db: Database,
        journal: JournalView,
        refresh_interval: float = 2.0,
    ) -> None:
        if not isinstance(stage.node, HumanNode) or not stage.inputs:
            raise ValueError(f"{workflow.name}/{stage.name} is not a human stage with an upstream stage")
        self.workflow, self.stage, self.db, self.journal = workflow, stage, db, journal
        self.node: HumanNode = stage.node
        self.upstream = stage.inputs[0].name
        self.refresh_interval = refresh_interval
        self.busy = False
        self.note: str | None = None  # a smart stage's model: accuracy, decided images, what it waits for
        self._snapshot = Snapshot(index={})
        self._signature: Any = None
        self._checked = 0.0
        self._lock = threading.Lock()

    @property
    def key(self) -> str:
        return f"{self.workflow.name}/{self.stage.name}"

    @property
    def domain(self) -> str:
        return self.node.label_key()[0]

    @property
    def kind(self) -> str:
        return self.node.kind

    def snapshot(self, force: bool = False) -> Snapshot:
        """The current upstream set; re-read when it changed (checked at most every `refresh_interval`)."""
        with self._lock:
            now = time.monotonic()
            if not force and now - self._checked < self.refresh_interval:
                return self._snapshot
            self._checked = now
            try:
                self._refresh()
                self.busy = False
            except StoreError:
                self.busy = True  # a run holds the database: keep the last snapshot, try again later
            return self._snapshot

    def _refresh(self) -> None:
        name = self.workflow.name
        with self.db.connect() as conn:
            smart = getattr(self.node, "decides_unlabeled", False)
            signature = conn.execute(
                "SELECT (SELECT count(*)::VARCHAR || '/' || coalesce(max(updated_at)::VARCHAR, '') FROM stage_rows "
                "WHERE workflow = ? AND stage = ?), (SELECT count(*) FROM image_order WHERE workflow = ?), "
                "(SELECT max(updated_at) FROM stage_rows WHERE ? AND workflow = ? AND stage = ?)",
                [name, self.upstream, name, smart, name, self.stage.name],
            ).fetchone()
            if signature == self._signature:
                return
            rows = stages.read_rows(conn, name, self.upstream)
            ordered = order.ordered_ids(conn, name)
            # A smart stage's tab leaves out the images its model decided: a person sees the rest.
            decided = _model_decided(conn, name, self.stage.name) if smart else set()
            if smart:
                self.note = _smart_note(conn, name, self.stage.name)
        items = _items({k: v for k, v in rows.items() if k not in decided}, ordered, self._text_prop())
        self._snapshot = Snapshot(
            tuple(items), {it.image_id: i for i, it in enumerate(items)}, self._snapshot.version + 1
        )
        self._signature = signature

    def _text_prop(self) -> str | None:
        return self.node.params.get("source_prop") if self.kind == "caption" else None

    def label_of(self, image_id: str) -> dict[str, Any] | None:
        label = self.journal.latest(self.domain, self.kind).get(image_id)
        return label.value if label else None

    def is_labeled(self, value: Mapping[str, Any] | None) -> bool:
        return self.node.is_labeled(value)

    def first_unlabeled(self, snapshot: Snapshot) -> int:
        """Index of the first image without a label for this stage (len(items) when all are labeled)."""
        latest = self.journal.latest(self.domain, self.kind)
        for i, item in enumerate(snapshot.items):
            label = latest.get(item.image_id)
            if not self.is_labeled(label.value if label else None):
                return i
        return len(snapshot.items)

    def counts(self, snapshot: Snapshot) -> dict[str, int]:
        """Dataset-wide: total kept upstream; kept / rejected / remaining from the latest labels."""
        latest = self.journal.latest(self.domain, self.kind)
        kept = rejected = 0
        for item in snapshot.items:
            label = latest.get(item.image_id)
            value = label.value if label else None
            if not self.is_labeled(value):
                continue
            if is_rejection(self.kind, value):
                rejected += 1
            else:
                kept += 1
        total = len(snapshot.items)
        return {"total": total, "kept": kept, "rejected": rejected, "remaining": total - kept - rejected}


def _smart_note(conn: Any, workflow: str, stage: str) -> str | None:
    from beprepared_dagster.nodes.smart import summary_line
    from beprepared_dagster.store.learned import stage_summary

    summary = stage_summary(conn, workflow, stage)
    return f"Model: {summary_line(summary)}" if summary else None


def _model_decided(conn: Any, workflow: str, stage: str) -> set[str]:
    """Images a smart stage decided without a label (its model's calls; not "waiting")."""
    rows = conn.execute(
        "SELECT s.image_id FROM stage_rows s LEFT JOIN human_applied h ON h.workflow = s.workflow "
        "AND h.stage = s.stage AND h.image_id = s.image_id WHERE s.workflow = ? AND s.stage = ? "
        "AND s.status <> 'pending' AND coalesce(h.journal_id, 0) = 0",
        [workflow, stage],
    ).fetchall()
    return {r[0] for r in rows}


def is_rejection(kind: str, value: Mapping[str, Any] | None) -> bool:
    if value is None:
        return False
    if kind == "filter":
        return not value.get("keep")
    return kind == "tag" and bool(value.get("rejected"))


def _items(rows: dict[str, list[stages.Row]], ordered: list[str], text_prop: str | None) -> list[Item]:
    """Kept upstream images in insertion order; images without an ordinal follow, by id."""
    rank = {image_id: i for i, image_id in enumerate(ordered)}
    kept = {}
    for image_id, group in rows.items():
        row = next((r for r in group if r.status == stages.KEPT), None)
        if row is not None:
            kept[image_id] = row
    chosen = sorted(kept, key=lambda i: (i not in rank, rank.get(i, 0), i))
    return [_item(image_id, kept[image_id].props, text_prop) for image_id in chosen]


def _item(image_id: str, props: Mapping[str, Any], text_prop: str | None) -> Item:
    objectid = props.get("objectid")
    original = props.get("original_path")
    text = props.get(text_prop) if text_prop else None
    return Item(
        image_id=image_id,
        objectid=objectid if is_object_id(objectid) else image_id,
        width=_int(props.get("width")),
        height=_int(props.get("height")),
        name=Path(str(original)).name if original else None,
        text=text if isinstance(text, str) else (None if text is None else str(text)),
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
