"""Model stages in the executor: look every image up in the cache first, and touch the model only when some
image needs computing.

Order matters for trust: the model is resolved (found on disk, or a clear "not downloaded" error) before any
row is written, so a missing model fails the stage at once; cache hits are written next; the misses then
stream through the runtime and each finished batch is stored at once (cache + stage rows), so `kill -9` loses
at most a batch per device. An outcome the node marks uncacheable (an empty or refused caption) is stored as
a row flagged for retry and never cached.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from beprepared_dagster.models import loading, runtime
from beprepared_dagster.models.api import WorkItem
from beprepared_dagster.nodes.base import Image, Outcome
from beprepared_dagster.store import cache, stages
from beprepared_dagster.store.stages import KEPT, REJECTED, RETRY, Row

if TYPE_CHECKING:
    from beprepared_dagster.nodes.model import ModelNode
    from beprepared_dagster.orchestration.executor import StageExecutor, StageReport
    from beprepared_dagster.workflow import Stage

READ_CHUNK = 4096


def run_model_stage(executor: StageExecutor, stage: Stage, keys: list[str], report: StageReport) -> None:
    from beprepared_dagster.orchestration.executor import chunks, input_digest

    node: ModelNode = stage.node  # type: ignore[assignment]
    upstream = stage.inputs[0].name
    inputs: dict[str, list[Row]] = {}
    hits: dict[str, Any] = {}
    digests: dict[tuple[str, int], str] = {}
    for chunk in chunks(keys, READ_CHUNK):
        with executor.store.db.connect() as conn:
            rows = stages.read_rows(conn, executor.workflow.name, upstream, chunk)
            executor._check_complete(stage, upstream, chunk, rows)
            found = {
                (r.image_id, r.seq): input_digest(node, r.props)
                for g in rows.values()
                for r in g
                if r.status == KEPT
            }
            hits.update(cache.lookup(conn, stage.fingerprint, sorted(set(found.values()))))
        inputs.update(rows)
        digests.update(found)
    misses = sorted({d for d in digests.values() if d not in hits})
    report.cache_hits += sum(1 for d in digests.values() if d in hits)
    if misses:  # e.g. AestheticScore from stored CLIP embeddings: no pass over the pixels
        hits.update(_without_model(executor, stage, node, inputs, digests, misses, report))
        misses = [d for d in misses if d not in hits]
    missing = set(misses)
    model = _resolve(node, executor.log) if misses else None  # before anything is written
    progress = executor.progress(stage, len(keys))
    done = [k for k in keys if all(digests.get((k, r.seq)) not in missing for r in inputs[k])]
    for chunk in chunks(done, READ_CHUNK):
        rows = [
            _row(executor, stage, r, _hit(hits, digests.get((k, r.seq)))) for k in chunk for r in inputs[k]
        ]
        executor._write(stage, rows, report, cache_values={})
        progress.advance(len(chunk))
    if not misses:
        progress.finish()
        return
    _compute(executor, stage, node, model, inputs, digests, misses, report, progress)
    progress.finish()


def _resolve(node: ModelNode, log: Any) -> Any:
    model = loading.resolve(node.model_spec())
    extras = {name: loading.resolve(spec) for name, spec in node.extra_specs().items()}
    log.info(f"model {model.label} in {model.path}")
    return model, extras


def _without_model(
    executor: StageExecutor,
    stage: Stage,
    node: ModelNode,
    inputs: dict[str, list[Row]],
    digests: dict[tuple[str, int], str],
    misses: list[str],
    report: StageReport,
) -> dict[str, Any]:
    """Outcomes (as cached JSON) the node gives for some misses without loading its model; cached at once."""
    wanted, first = set(misses), {}
    for image_id, rows in inputs.items():
        for row in rows:
            digest = digests.get((image_id, row.seq))
            if digest in wanted and digest not in first:
                first[digest] = row.props
    found = node.without_model([Image(first[d]) for d in misses], executor._context(stage))
    outcomes = {d: o for d, o in zip(misses, found, strict=True) if o is not None}
    if outcomes:
        with executor.store.db.connect() as conn:
            cache.store(conn, stage.fingerprint, {d: o.to_json() for d, o in outcomes.items() if o.cache})
        report.computed += len(outcomes)
        executor.log.info(f"{stage.name}: {len(outcomes)} image(s) computed without loading the model")
    return {d: o.to_json() for d, o in outcomes.items()}


def _store_embeddings(outcomes: list[Outcome]) -> Any:
    """`also` for a batch write: the vectors the outcomes carry go into the embeddings table."""
    from beprepared_dagster.store import embeddings

    by_space: dict[str, dict[str, Any]] = {}
    for outcome in outcomes:
        for space, objectid, vector in outcome.embeddings:
            by_space.setdefault(space, {})[objectid] = vector
    if not by_space:
        return None

    def write(conn: Any) -> None:
        for space, vectors in by_space.items():
            embeddings.put(conn, space, vectors)

    return write


def _hit(hits: dict[str, Any], digest: str | None) -> Outcome | None:
    return Outcome.from_json(hits[digest]) if digest in hits else None


def _compute(
    executor: StageExecutor,
    stage: Stage,
    node: ModelNode,
    resolved: Any,
    inputs: dict[str, list[Row]],
    digests: dict[tuple[str, int], str],
    misses: list[str],
    report: StageReport,
    progress: Any,
) -> None:
    model, extras = resolved
    # One work item per distinct input (identical inputs are computed once), remembering every row it feeds.
    wanted = set(misses)
    feeds: dict[str, list[Row]] = {}
    for image_id, rows in inputs.items():
        for row in rows:
            digest = digests.get((image_id, row.seq))
            if digest in wanted:
                feeds.setdefault(digest, []).append(row)
    items = []
    for index, digest in enumerate(misses):
        props = feeds[digest][0].props
        path = str(executor.store.objects.path(props["objectid"]))
        items.append(WorkItem(index, path, node.work_data(Image(props))))
    args = {
        **node.backend_args(),
        **({"extra_models": {n: str(m.path) for n, m in extras.items()}} if extras else {}),
    }

    ctx = executor._context(stage)
    finish = getattr(node, "finish", None)  # nodes that derive new bytes store them through ctx.objects

    def outcome_of(index: int, value: Any) -> Outcome:
        image = Image(feeds[misses[index]][0].props)
        return finish(image, value, model, ctx) if finish else node.outcome(image, value, model)

    def store_batch(results: list[tuple[int, Any]]) -> None:
        outcomes = {misses[i]: outcome_of(i, value) for i, value in results}
        rows = [_row(executor, stage, r, outcomes[d]) for d in outcomes for r in feeds[d]]
        cacheable = {d: o.to_json() for d, o in outcomes.items() if o.cache}
        also = _store_embeddings(list(outcomes.values()))
        executor._write(stage, rows, report, cache_values=cacheable, also=also)
        report.computed += len(outcomes)
        report.fresh_images += len({r.image_id for r in rows})
        progress.advance(len({r.image_id for r in rows}))

    runtime.run_model(
        node.backend,
        args,
        model,
        items,
        batch_size=node.model_batch_size,
        settings=node.device_settings,
        log=executor.log,
        on_results=store_batch,
    )


def _row(executor: StageExecutor, stage: Stage, row: Row, outcome: Outcome | None) -> Row:
    out = executor._apply(stage, row, outcome)
    if outcome is None or outcome.cache or row.status != KEPT:
        return out
    # Not cached: flagged so the next run of this stage computes it again.
    reason = outcome.reason or outcome.set.get("caption_error") or "failed"
    status = KEPT if outcome.kept else REJECTED
    return Row(
        out.image_id,
        out.seq,
        status,
        f"{RETRY}{reason}",
        stage.name if status == REJECTED else None,
        out.props,
    )
