"""The labeling app's handlers, free of Gradio: what the browser's server functions call.

Every handler takes one JSON object and returns one, with `ok` true or false and an `error` to show; none
raises (Gradio would turn an exception into a silent `null`). `record` returns only after the journal append
returned, so an acknowledged label is durable.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from beprepared_dagster.errors import StoreError
from beprepared_dagster.labeling import values
from beprepared_dagster.labeling.display import PAIR_EDGE, DisplayCache, DisplayFile
from beprepared_dagster.labeling.queue import JournalView, Snapshot, StageQueue
from beprepared_dagster.labeling.rank import RankState
from beprepared_dagster.labeling.urls import tab_key
from beprepared_dagster.nodes.base import HumanNode
from beprepared_dagster.store.db import Database
from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster.workflow import Workflow

log = logging.getLogger(__name__)

PAGE = 200  # images per page sent to the browser (~150 bytes each; no image data)
BACK = 20  # already-labeled images sent before the first unlabeled one, for ← navigation
MAX_WRITES = 500
WARM_AHEAD = 8
PREFETCH_AHEAD = 300  # display copies made in the background past each tab's first image still to label
DB_LOCK_TIMEOUT = 3.0


class _Workspace:
    """The stores of one workspace folder, shared by every stage that lives there."""

    def __init__(self, root: Any, lock_timeout: float) -> None:
        self.store = WorkspaceStore(root)
        self.db = Database(self.store.db.path, lock_timeout=lock_timeout)
        self.journal = JournalView(self.store.journal)
        self.display = DisplayCache(self.store.objects, self.store.cache_dir / "display")
        self.pair_display = DisplayCache(
            self.store.objects, self.store.cache_dir / "display-pair", PAIR_EDGE, slots=self.display._slots
        )


class LabelingService:
    """Queues of every human stage of `workflows`, keyed `<workflow>/<stage>`, in workflow order."""

    def __init__(
        self,
        workflows: Iterable[Workflow],
        refresh_interval: float = 2.0,
        page_size: int = PAGE,
        lock_timeout: float = DB_LOCK_TIMEOUT,
    ) -> None:
        self.workflows = list(workflows)
        self.page_size, self.lock_timeout = page_size, lock_timeout
        self.workspaces: dict[str, _Workspace] = {}
        self._prefetcher: threading.Thread | None = None
        self._stopped = threading.Event()
        self.queues: dict[str, StageQueue] = {}
        self.ranks: dict[str, RankState] = {}
        for workflow in self.workflows:
            ws = self._workspace(workflow)
            for stage in workflow.stages:
                if isinstance(stage.node, HumanNode) and stage.inputs:
                    queue = StageQueue(workflow, stage, ws.db, ws.journal, refresh_interval)
                    self.queues[tab_key(workflow.name, stage.name)] = queue
                    if queue.kind == "rank":
                        self.ranks[queue.key] = RankState(queue)

    def _workspace(self, workflow: Workflow) -> _Workspace:
        root = str(workflow.workspace_dir)
        if root not in self.workspaces:
            self.workspaces[root] = _Workspace(root, self.lock_timeout)
        return self.workspaces[root]

    def _ws_of(self, queue: StageQueue) -> _Workspace:
        return self.workspaces[str(queue.workflow.workspace_dir)]

    def start_prefetch(self, interval: float = 2.0) -> None:
        """Make display copies ahead of the person, in the background, for every tab: as soon as images reach
        a human stage (whether or not a page is open), from each tab's first image still to label on."""
        if self._prefetcher is None:
            self._prefetcher = threading.Thread(
                target=self._prefetch_loop, args=(interval,), name="display-prefetch", daemon=True
            )
            self._prefetcher.start()

    def stop(self) -> None:
        self._stopped.set()

    def _prefetch_loop(self, interval: float) -> None:
        while not self._stopped.is_set():
            try:
                self.prefetch()
            except Exception:  # a background helper: log, never die
                log.exception("display prefetch failed")
            self._stopped.wait(interval)

    def prefetch(self) -> int:
        """Queue the display copies each tab will need next; returns how many were queued."""
        queued = 0
        for key, queue in self.queues.items():
            ws = self._ws_of(queue)
            ws.journal.refresh()
            snap = queue.snapshot()
            if key in self.ranks:  # any image may come next in a pair
                queued += ws.pair_display.warm([it.objectid for it in snap.items[:PREFETCH_AHEAD]])
                continue
            else:
                latest = queue.journal.latest(queue.domain, queue.kind)
                objects = []
                for item in snap.items[queue.first_unlabeled(snap) :]:
                    label = latest.get(item.image_id)
                    if not queue.is_labeled(label.value if label else None):
                        objects.append(item.objectid)
                        if len(objects) >= PREFETCH_AHEAD:
                            break
            queued += ws.display.warm(objects)
        return queued

    def tabs(self) -> list[dict[str, Any]]:
        """What the browser needs to draw each tab (no image data)."""
        return [_tab_config(key, q) for key, q in self.queues.items()]

    # --- handlers ------------------------------------------------------------------------------------

    def start(self, payload: Any) -> dict[str, Any]:
        """A tab's first page: from a few labeled images before the first unlabeled one."""
        queue, error = self._queue(payload)
        if queue is None:
            return _fail(error)
        position = self._ws_of(queue).journal.refresh()
        snap = queue.snapshot(force=True)
        if queue.busy and snap.version == 0:
            return _fail("the workspace database is busy (a run is writing to it); trying again")
        if queue.key in self.ranks:
            pairs = self._pairs(queue, snap, payload)
            page = {"items": [], "start": 0, "cursor": 0, "more_before": False, "more_after": False}
            return {**page, "ok": True, "pairs": pairs, "journal": position, **self._status(queue, snap)}
        first = queue.first_unlabeled(snap)
        begin = max(0, first - BACK)
        page = self._page(queue, snap, begin, begin + BACK + self.page_size)
        return {**page, "ok": True, "cursor": first - begin, "journal": position, **self._status(queue, snap)}

    def page(self, payload: Any) -> dict[str, Any]:
        """Images after (`after`: an image id) or before (`before`) one the browser has."""
        queue, error = self._queue(payload)
        if queue is None:
            return _fail(error)
        snap = queue.snapshot()
        after, before = payload.get("after"), payload.get("before")
        limit = max(1, min(int(payload.get("limit") or self.page_size), 1000))
        if before is not None:
            end = snap.position(before)
            if end is None:
                return _fail("gone", gone=before)
            return {"ok": True, **self._page(queue, snap, max(0, end - limit), end)}
        start = 0 if after is None else snap.position(after)
        if start is None:
            return _fail("gone", gone=after)
        start += 0 if after is None else 1
        return {"ok": True, **self._page(queue, snap, start, start + limit)}

    def poll(self, payload: Any) -> dict[str, Any]:
        """Counts, labels changed since journal id `since` (other tabs and devices), and new images after
        `after` when the browser has reached the end of what it knows."""
        queue, error = self._queue(payload)
        if queue is None:
            return _fail(error)
        position = self._ws_of(queue).journal.refresh()
        snap = queue.snapshot()
        if queue.key in self.ranks:
            return {"ok": True, "journal": position, "changes": [], **self._status(queue, snap)}
        since = payload.get("since") if isinstance(payload.get("since"), int) else position
        changes = [
            {"id": lb.image_id, "value": lb.value, "j": lb.id}
            for lb in queue.journal.changed_since(queue.domain, queue.kind, since)
        ]
        result: dict[str, Any] = {"ok": True, "journal": position, "changes": changes}
        if payload.get("tail"):
            after = payload.get("after")
            start = 0 if after is None else snap.position(after)
            if start is None:
                result["gone"] = True  # the browser's last image left the stage: it reloads the tab
            else:
                start += 0 if after is None else 1
                result.update(self._page(queue, snap, start, start + self.page_size))
        return {**result, **self._status(queue, snap)}

    def pairs(self, payload: Any) -> dict[str, Any]:
        """A rank tab's next pairs: `want` of them, after the pairs the browser holds (`avoid`, the last one on
        screen), so it can keep several ahead of a fast presser."""
        queue, error = self._queue(payload)
        if queue is None or queue.key not in self.ranks:
            return _fail(error or "not a ranking tab")
        position = self._ws_of(queue).journal.refresh()
        snap = queue.snapshot()
        return {
            "ok": True,
            "pairs": self._pairs(queue, snap, payload),
            "journal": position,
            **self._status(queue, snap),
        }

    def record(self, payload: Any, labeler: str | None = None) -> dict[str, Any]:
        """Append a batch of writes to the journal(s); durable when this returns `ok`. Per write: `ok` with
        its journal id, or `invalid` (never retried) with the reason."""
        writes = payload.get("writes") if isinstance(payload, dict) else None
        if not isinstance(writes, list) or not 0 < len(writes) <= MAX_WRITES:
            return _fail(f"writes must be a list of 1-{MAX_WRITES} entries")
        results: list[dict[str, Any]] = []
        batches: dict[str, list[tuple[int, tuple, str]]] = {}
        for i, write in enumerate(writes):
            try:
                root, entry, request_id = self._entry(write)
            except values.InvalidWrite as exc:
                results.append({"rid": _rid(write), "status": "invalid", "error": str(exc)})
                continue
            results.append({"rid": request_id, "status": "pending"})
            batches.setdefault(root, []).append((i, entry, request_id))
        for root, batch in batches.items():
            try:
                ids = self.workspaces[root].store.journal.append_many(
                    [e for _, e, _ in batch], labeler=labeler, request_ids=[r for _, _, r in batch]
                )
            except (StoreError, ValueError) as exc:
                log.warning("label journal append failed: %s", exc)
                return _fail(f"could not save: {exc}")
            for (i, _, _), journal_id in zip(batch, ids, strict=True):
                results[i] = {"rid": results[i]["rid"], "status": "ok", "j": journal_id}
        return {"ok": True, "results": results}

    def display(self, object_id: str, size: str | None = None) -> DisplayFile | None:
        """The display copy of an object of any served workspace (ValueError for a bad id); `size="pair"`:
        the smaller copy HumanRank shows two of side by side."""
        for ws in self.workspaces.values():
            found = (ws.pair_display if size == "pair" else ws.display).get(object_id)
            if found is not None:
                return found
        return None

    # --- helpers -------------------------------------------------------------------------------------

    def _queue(self, payload: Any) -> tuple[StageQueue | None, str]:
        if not isinstance(payload, dict):
            return None, "expected an object"
        queue = _lookup(self.queues, payload.get("tab"))
        return (queue, "") if queue is not None else (None, f"no such tab: {str(payload.get('tab'))[:100]}")

    def _entry(self, write: Any) -> tuple[str, tuple, str]:
        if not isinstance(write, dict):
            raise values.InvalidWrite("a write must be an object")
        request_id = values.check_request_id(write.get("rid"))
        queue = _lookup(self.queues, write.get("tab"))
        if queue is None:
            raise values.InvalidWrite(f"no such tab: {str(write.get('tab'))[:100]}")
        image_id = values.check_image_id(write.get("id"))
        value = values.normalise(queue.node, write.get("value"))
        root = str(queue.workflow.workspace_dir)
        return root, (queue.domain, queue.kind, image_id, value), request_id

    def _page(self, queue: StageQueue, snap: Snapshot, start: int, end: int) -> dict[str, Any]:
        start, end = max(0, start), min(len(snap.items), end)
        latest = queue.journal.latest(queue.domain, queue.kind)
        items = []
        for item in snap.items[start:end]:
            label = latest.get(item.image_id)
            entry = {**item.to_json(), "value": label.value if label else None}
            if queue.kind == "caption":
                entry["text"] = item.text
            items.append(entry)
        pending = [it["obj"] for it in items if not queue.is_labeled(it["value"])][:WARM_AHEAD]
        self._ws_of(queue).display.warm(pending, urgent=True)
        return {"items": items, "start": start, "more_before": start > 0, "more_after": end < len(snap.items)}

    def _status(self, queue: StageQueue, snap: Snapshot) -> dict[str, Any]:
        rank = self.ranks.get(queue.key)
        counts = rank.counts(snap) if rank is not None else queue.counts(snap)
        status = {"counts": counts, "busy": queue.busy, "version": snap.version}
        return {**status, "note": queue.note} if queue.note else status

    def _pairs(self, queue: StageQueue, snap: Snapshot, payload: dict[str, Any]) -> list[dict[str, Any]]:
        avoid = [
            (p[0], p[1])
            for p in payload.get("avoid") or []
            if isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
        ][-64:]
        want = payload.get("want") if isinstance(payload.get("want"), int) else 8
        seed = queue.journal.position * 7919 + len(avoid)
        pairs = self.ranks[queue.key].pairs(snap, want, avoid, seed)
        self._ws_of(queue).pair_display.warm(
            [p[side]["obj"] for p in pairs for side in ("a", "b")], urgent=True
        )
        return pairs


def _tab_config(key: str, queue: StageQueue) -> dict[str, Any]:
    node = queue.node
    config: dict[str, Any] = {
        "key": key,
        "workflow": queue.workflow.name,
        "stage": queue.stage.name,
        "kind": queue.kind,
        "domain": queue.domain,
        "upstream": queue.upstream,
    }
    if queue.kind == "tag":
        config["rows"] = node.rows  # type: ignore[attr-defined]
    if queue.kind in ("tag", "caption"):
        config["version"] = node.params["version"]
    if queue.kind == "rank":
        config["target"] = node.params["comparisons_per_image"]
    return config


def _lookup(queues: dict[str, StageQueue], tab: Any) -> StageQueue | None:
    """The queue of a tab key from the browser (a list or object there is no tab, not a TypeError that would
    fail every other write of its batch)."""
    return queues.get(tab) if isinstance(tab, str) else None


def _rid(write: Any) -> str | None:
    return write.get("rid") if isinstance(write, dict) and isinstance(write.get("rid"), str) else None


def _fail(error: str, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "error": error, **extra}
