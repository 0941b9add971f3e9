"""Run one stage over a list of images: read upstream rows, look the node's outcomes up in the cache,
compute the misses in batches, write cache and stage rows in bulk. Dagster-free, so it is tested directly
and the asset factory stays a thin wrapper.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from beprepared_dagster.errors import BadImage, BeprepareError, StageFailed
from beprepared_dagster.nodes.base import (
    HumanNode,
    Image,
    ImageNode,
    MergeNode,
    NodeContext,
    Outcome,
    SetNode,
    SourceNode,
)
from beprepared_dagster.nodes.model import ModelNode
from beprepared_dagster.orchestration.progress import StageProgress
from beprepared_dagster.remote.node import RemoteNode
from beprepared_dagster.store import cache, stages
from beprepared_dagster.store.stages import ABSENT, ERROR, KEPT, PENDING, REJECTED, Row
from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster.workflow import Stage, Workflow

PREVIEW_SIZE = 6
READ_WINDOW = 8192  # images whose inputs one connection reads
WRITE_EVERY = 1.0  # seconds of work kept in memory at most before it is stored
SLOW_BATCH = 0.2  # a batch that took this long is stored at once (Ctrl-C keeps it)


class UpstreamMissing(BeprepareError):
    """A stage was asked to run on images its upstream stage has not processed yet."""


@dataclass
class StageReport:
    """What one stage did in one run; becomes the materialization's metadata."""

    stage: str
    images: int = 0
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    rejected_upstream: int = 0
    absent: int = 0
    pending: int = 0
    cache_hits: int = 0
    computed: int = 0  # distinct inputs the node computed
    fresh_images: int = 0  # images whose outcome was computed in this run (not from the cache)
    changed: int = 0
    errors: list[str] = field(default_factory=list)
    unreadable_files: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    preview: list[Row] = field(default_factory=list)
    per_image: dict[str, Row] = field(default_factory=dict)  # for each partition's own metadata
    extra: dict[str, Any] = field(default_factory=dict)  # a stage kind's own figures (API requests, tokens…)

    def add_row(self, row: Row, stage: str) -> None:
        self.per_image.setdefault(row.image_id, row)  # the first row (seq 0) speaks for the image
        if row.status == KEPT:
            self.kept += 1
            if len(self.preview) < PREVIEW_SIZE:
                self.preview.append(row)
        elif row.status == ABSENT:
            self.absent += 1
        elif row.status == PENDING:
            self.pending += 1
        elif row.at_stage != stage:
            self.rejected_upstream += 1
        elif row.status == REJECTED:
            self.rejected[_reason_class(row.reason)] += 1


def _reason_class(reason: str | None) -> str:
    """Group reasons for counting: 'too small: width 40 < min_width 64' → 'too small'."""
    return (reason or "rejected").split(":")[0]


def input_digest(node: ImageNode, props: dict[str, Any]) -> str:
    reads = node.reads
    chosen = props if reads is None else {k: props.get(k) for k in reads}
    return hashlib.sha256(json.dumps(chosen, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# (database file, fingerprint) pairs this process has described: the row never changes once written.
_DESCRIBED: set[tuple[str, str]] = set()


def undescribed(db: Any, stages: list[Stage]) -> list[Stage]:
    """The stages whose fingerprint this process has not described in `db` yet."""
    return [s for s in stages if (str(db.path), s.fingerprint) not in _DESCRIBED]


def describe(conn: Any, db: Any, stages: list[Stage]) -> None:
    """Record what each stage's fingerprint stands for (node, version, parameters) on `conn`, a connection
    to `db` about to commit; the headless runner does it for every stage in the transaction it opens
    anyway, so a stage's run needs no connection of its own for it."""
    todo = {s.fingerprint: s.node for s in undescribed(db, stages)}  # one row per fingerprint
    cache.describe_many(
        conn,
        [(fp, type(node).__name__, node.version, node.fingerprint_params()) for fp, node in todo.items()],
    )
    _DESCRIBED.update((str(db.path), fp) for fp in todo)


class StageExecutor:
    """Executes stages of one workflow against its workspace store."""

    def __init__(
        self,
        store: WorkspaceStore,
        workflow: Workflow,
        log: Any,
        run_id: str | None = None,
        on_progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.store, self.workflow, self.log, self.run_id = store, workflow, log, run_id
        self.on_progress = on_progress  # (stage, images done, total) after every stored batch
        self.ctx = NodeContext(objects=store.objects, log=log)

    def progress(self, stage: Stage, total: int) -> StageProgress:
        """A counter for a stage's images: logs done / total, rate and ETA every few seconds."""
        return StageProgress(stage.name, total, self.log, self.on_progress)

    def _context(self, stage: Stage) -> NodeContext:
        from beprepared_dagster.store.embeddings import EmbeddingReader

        debug = self.store.root / "debug" / self.workflow.name / stage.name
        return NodeContext(
            objects=self.store.objects,
            log=self.log,
            debug_dir=debug,
            embeddings=EmbeddingReader(self.store.db),
        )

    def run(self, stage: Stage, keys: list[str]) -> StageReport:
        report = StageReport(stage.name, images=len(keys))
        started = time.perf_counter()
        node = stage.node
        if undescribed(self.store.db, [stage]):
            with self.store.db.connect() as conn:
                describe(conn, self.store.db, [stage])
        if isinstance(node, SourceNode):
            from beprepared_dagster.orchestration.stage_load import run_load

            run_load(self, stage, keys, report)
        elif isinstance(node, MergeNode):
            self._run_merge(stage, keys, report)
        elif isinstance(node, HumanNode) and getattr(node, "decides_unlabeled", False):
            from beprepared_dagster.orchestration.stage_smart import run_smart

            run_smart(self, stage, keys, report)
        elif isinstance(node, HumanNode):
            from beprepared_dagster.orchestration.stage_human import run_human

            run_human(self, stage, keys, report)
        elif isinstance(node, SetNode):
            from beprepared_dagster.orchestration.stage_set import run_set

            run_set(self, stage, keys, report)
        elif isinstance(node, RemoteNode):
            from beprepared_dagster.orchestration.stage_remote import run_remote_stage

            run_remote_stage(self, stage, keys, report)
        elif isinstance(node, ModelNode):
            from beprepared_dagster.orchestration.stage_model import run_model_stage

            run_model_stage(self, stage, keys, report)
        elif isinstance(node, ImageNode):
            self._run_images(stage, keys, report)
        else:
            raise TypeError(f"stage {stage.name!r}: {type(node).__name__} is not a per-image node")
        report.seconds = time.perf_counter() - started
        return report

    # --- per-image nodes ---------------------------------------------------------------------------------

    def _run_images(self, stage: Stage, keys: list[str], report: StageReport) -> None:
        """Per-image nodes: inputs read (and the cache consulted) a window of up to READ_WINDOW images per
        connection, `node.batch_size` images handed to `process` at once, results stored after any batch
        that took SLOW_BATCH seconds or more, else at least every WRITE_EVERY seconds and at the end of each
        window. A cheap node (a filter) thus costs one read and one write per window instead of a pair per
        batch; a slow one (a conversion) still stores every batch, so Ctrl-C keeps what was done. A node
        that works on properties alone (`ImageNode.properties_only`) is computed inside the transaction that
        read its window, and stored there: one database access per window instead of two."""
        node: ImageNode = stage.node  # type: ignore[assignment]
        upstream = stage.inputs[0].name
        progress = self.progress(stage, len(keys))
        for window in chunks(keys, max(READ_WINDOW, node.batch_size, 1)):
            with self.store.db.connect() as conn:
                inputs = stages.read_rows(conn, self.workflow.name, upstream, window)
                self._check_complete(stage, upstream, window, inputs)
                digests = {
                    (r.image_id, r.seq): input_digest(node, r.props)
                    for rows in inputs.values()
                    for r in rows
                    if r.status == KEPT
                }
                cached = cache.lookup(conn, stage.fingerprint, sorted(set(digests.values())))
                if node.properties_only:
                    self._run_window(stage, node, window, inputs, digests, cached, report, progress, conn)
                    continue
            self._run_window(stage, node, window, inputs, digests, cached, report, progress, None)
        progress.finish()

    def _run_window(
        self,
        stage: Stage,
        node: ImageNode,
        window: list[str],
        inputs: dict[str, list[Row]],
        digests: dict[tuple[str, int], str],
        cached: dict[str, Any],
        report: StageReport,
        progress: StageProgress,
        conn: Any,
    ) -> None:
        """Compute a window's cache misses batch by batch and store the rows (on `conn` when given)."""
        report.cache_hits += sum(1 for d in digests.values() if d in cached)
        report.fresh_images += sum(1 for d in digests.values() if d not in cached)
        rows: list[Row] = []
        fresh_values: dict[str, Any] = {}
        images, written_at = 0, time.monotonic()
        for chunk in chunks(window, max(node.batch_size, 1)):
            batch_started = time.monotonic()
            mine = [
                ((i, r.seq), digests[(i, r.seq)]) for i in chunk for r in inputs[i] if (i, r.seq) in digests
            ]
            todo = {d: rk for rk, d in mine if d not in cached}
            fresh = self._compute(stage, node, {d: inputs[rk[0]][rk[1]] for d, rk in todo.items()}, report)
            outcomes = {**{d: Outcome.from_json(cached[d]) for _, d in mine if d in cached}, **fresh}
            for image_id in chunk:
                for row in inputs[image_id]:
                    outcome = outcomes.get(digests.get((image_id, row.seq), ""))
                    rows.append(self._apply(stage, row, outcome))
            fresh_values.update({d: o.to_json() for d, o in fresh.items() if o is not None})
            images += len(chunk)
            now = time.monotonic()
            if now - batch_started >= SLOW_BATCH or now - written_at >= WRITE_EVERY:
                self._write(stage, rows, report, cache_values=fresh_values, conn=conn)
                progress.advance(images)
                rows, fresh_values, images, written_at = [], {}, 0, time.monotonic()
        if images:
            self._write(stage, rows, report, cache_values=fresh_values, conn=conn)
            progress.advance(images)

    def _compute(
        self, stage: Stage, node: ImageNode, todo: dict[str, Row], report: StageReport
    ) -> dict[str, Any]:
        """Run the node on cache misses; isolate failures per image. Returns digest → Outcome, or None for an
        image that failed unexpectedly (not cached, reported as an error)."""
        digests = list(todo)
        images = [Image(todo[d].props) for d in digests]
        try:
            outcomes: list[Outcome | None] = list(node.process(images, self._context(stage)))
        except StageFailed:
            raise
        except Exception:
            outcomes = [self._one(stage, node, image) for image in images]
        report.computed += len(digests)
        return dict(zip(digests, outcomes, strict=True))

    def _one(self, stage: Stage, node: ImageNode, image: Image) -> Outcome | None:
        try:
            return node.process([image], self._context(stage))[0]
        except StageFailed:
            raise
        except BadImage as exc:
            return Outcome.reject(f"bad image: {exc}")
        except Exception as exc:
            self.log.error(
                f"{stage.name}: {image.get('original_path', image.get('objectid'))}: {type(exc).__name__}: {exc}"
            )
            return None

    def _apply(self, stage: Stage, row: Row, outcome: Outcome | None) -> Row:
        if row.status != KEPT:
            return Row(
                row.image_id,
                row.seq,
                row.status if row.status != ERROR else REJECTED,
                row.reason,
                row.at_stage,
                row.props,
            )
        if outcome is None:
            return Row(row.image_id, row.seq, ERROR, "error: see the run log", stage.name, row.props)
        if not outcome.kept:
            return Row(row.image_id, row.seq, REJECTED, outcome.reason, stage.name, row.props)
        return Row(row.image_id, row.seq, KEPT, None, None, {**row.props, **outcome.set})

    def _check_complete(
        self, stage: Stage, upstream: str, chunk: list[str], inputs: dict[str, list[Row]]
    ) -> None:
        missing = [k for k in chunk if k not in inputs]
        if missing:
            raise UpstreamMissing(
                f"stage {stage.name!r}: upstream stage {upstream!r} has no result for {len(missing)} image(s) "
                f"(first: {missing[0][:12]}…); materialize {self.workflow.name}/{upstream} for them first"
            )

    def _write(
        self,
        stage: Stage,
        rows: list[Row],
        report: StageReport,
        cache_values: dict[str, Any],
        also: Callable[[Any], None] | None = None,
        conn: Any = None,
    ) -> None:
        """Write cache values and stage rows (and `also(conn)`) in one transaction (`conn`'s when given, else
        one of its own), then count them."""
        with nullcontext(conn) if conn is not None else self.store.db.connect() as conn:
            cache.store(conn, stage.fingerprint, cache_values)
            report.changed += stages.write_rows(
                conn,
                self.workflow.name,
                stage.name,
                stage.fingerprint,
                self.run_id,
                rows,
                upstream=[i.name for i in stage.inputs],
            )
            if also is not None:
                also(conn)
        for row in rows:
            report.add_row(row, stage.name)
            if row.status == ERROR:
                report.errors.append(row.image_id)

    # --- Concat --------------------------------------------------------------------------------------------

    def _run_merge(self, stage: Stage, keys: list[str], report: StageReport) -> None:
        for chunk in chunks(keys, 4096):
            with self.store.db.connect() as conn:
                per_input = []
                for source in stage.inputs:
                    rows = stages.read_rows(conn, self.workflow.name, source.name, chunk)
                    self._check_complete(stage, source.name, chunk, rows)
                    per_input.append(rows)
            out = []
            for image_id in chunk:
                candidates = [r for rows in per_input for r in rows[image_id]]
                kept = [r for r in candidates if r.status == KEPT]
                if kept:
                    out.extend(Row(image_id, i, KEPT, None, None, r.props) for i, r in enumerate(kept))
                else:
                    first = next((r for r in candidates if r.status != ABSENT), candidates[0])
                    status = REJECTED if first.status == ERROR else first.status
                    out.append(Row(image_id, 0, status, first.reason, first.at_stage, first.props))
            self._write(stage, out, report, cache_values={})
