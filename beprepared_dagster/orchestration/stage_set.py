"""Set-level stages in the executor: the node decides over every kept upstream image of the workflow at once
(in partition insertion order), whatever range the run covers, and rows are written for all of them. Rows
whose outcome did not change keep their timestamp, so only images whose decision changed go stale below.

The decision is cached by a digest of all its inputs; expensive per-image features (perceptual hashes) are
cached per (feature key, objectid), so re-deciding after one new image costs one feature computation.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from beprepared_dagster.errors import BadImage, StageFailed
from beprepared_dagster.nodes.base import Image, Outcome, SetNode
from beprepared_dagster.store import cache, order, stages
from beprepared_dagster.store.stages import KEPT, Row

if TYPE_CHECKING:
    from beprepared_dagster.orchestration.executor import StageExecutor, StageReport
    from beprepared_dagster.workflow import Stage

FEATURE_BATCH = 64


def run_set(executor: StageExecutor, stage: Stage, keys: list[str], report: StageReport) -> None:
    from beprepared_dagster.orchestration.executor import input_digest

    node: SetNode = stage.node  # type: ignore[assignment]
    upstream = stage.inputs[0].name
    workflow = executor.workflow.name
    with executor.store.db.connect() as conn:
        inputs = stages.read_rows(conn, workflow, upstream)
        ranked = {k: i for i, k in enumerate(order.ordered_ids(conn, workflow))}
    executor._check_complete(stage, upstream, keys, inputs)
    ids = sorted(inputs, key=lambda k: (ranked.get(k, len(ranked)), k))
    records = [r for k in ids for r in inputs[k] if r.status == KEPT]
    features = _features(executor, stage, node, records, report)
    decided = {}
    images = []
    for r in records:
        problem = features.get(r.props.get("objectid", ""), {}).get("_feature_error")
        if problem is not None:
            # A bad image is rejected; an unexpected error (not cached) is left undecided: an error row,
            # which fails the run and is retried, rather than a rejection that looks like a result.
            if not str(problem).startswith("error:"):
                decided[(r.image_id, r.seq)] = Outcome.reject(problem)
            else:
                executor.log.error(f"{stage.name}: {r.props.get('original_path', r.image_id)}: {problem}")
        else:
            images.append(
                (
                    r,
                    Image(
                        {**r.props, **features.get(r.props.get("objectid", ""), {}), "image_id": r.image_id}
                    ),
                )
            )
    digest = _digest([(r.image_id, r.seq, input_digest(node, dict(img))) for r, img in images])  # type: ignore[arg-type]
    with executor.store.db.connect() as conn:
        cached = cache.lookup(conn, stage.fingerprint, [digest]).get(digest)
    if cached is not None:
        outcomes = [Outcome.from_json(v) for v in cached]
        report.cache_hits += len(images)
    else:
        outcomes = _decide(executor, stage, node, [img for _, img in images])
        report.computed += len(images)
        report.fresh_images += len(images)
    for (r, _), outcome in zip(images, outcomes, strict=True):
        decided[(r.image_id, r.seq)] = outcome
    rows = [
        executor._apply(stage, r, decided.get((r.image_id, r.seq)))
        if r.status == KEPT
        else executor._apply(stage, r, None)
        for k in ids
        for r in inputs[k]
    ]
    report.images = len(ids)
    values = {digest: [o.to_json() for o in outcomes]} if cached is None else {}
    # One transaction: a decision half written (a failure between chunks) could leave nothing stale to redo it.
    executor._write(stage, rows, report, values)


def _decide(executor: StageExecutor, stage: Stage, node: SetNode, images: list[Image]) -> list[Outcome]:
    try:
        outcomes = list(node.decide(images, executor._context(stage)))
    except StageFailed:
        raise
    except Exception as exc:  # a set decision cannot be isolated per image
        raise StageFailed(f"{stage.name}: {type(node).__name__} failed: {type(exc).__name__}: {exc}") from exc
    if len(outcomes) != len(images):
        raise StageFailed(
            f"{stage.name}: {type(node).__name__} returned {len(outcomes)} outcomes for {len(images)} images"
        )
    return outcomes


def _features(
    executor: StageExecutor, stage: Stage, node: SetNode, records: list[Row], report: StageReport
) -> dict[str, dict[str, Any]]:
    key = node.features_key()
    if key is None:
        return {}
    fingerprint = hashlib.sha256(f"features:{type(node).__name__}:{key}".encode()).hexdigest()
    by_object = {r.props["objectid"]: r for r in records if r.props.get("objectid")}
    with executor.store.db.connect() as conn:
        cache.describe(conn, fingerprint, f"{type(node).__name__}.features", node.version, {"key": key})
        found = cache.lookup(conn, fingerprint, list(by_object))
    todo = [o for o in by_object if o not in found]
    fresh: dict[str, Any] = {}
    ctx = executor._context(stage)
    for start in range(0, len(todo), FEATURE_BATCH):
        batch = todo[start : start + FEATURE_BATCH]
        images = [Image(by_object[o].props) for o in batch]
        try:
            values = list(node.features(images, ctx))
        except Exception:
            values = [_one_feature(node, image, ctx) for image in images]
        fresh.update(zip(batch, values, strict=True))
        with executor.store.db.connect() as conn:
            # Unexpected errors are not cached (they may be transient); bad images are deterministic.
            keep = {
                o: fresh[o] for o in batch if not str(fresh[o].get("_feature_error", "")).startswith("error:")
            }
            cache.store(conn, fingerprint, keep)
    if todo:
        executor.log.info(f"{stage.name}: computed features of {len(todo)} image(s), {len(found)} cached")
    return {**found, **fresh}


def _one_feature(node: SetNode, image: Image, ctx: Any) -> dict[str, Any]:
    try:
        return node.features([image], ctx)[0]
    except BadImage as exc:
        return {"_feature_error": f"bad image: {exc}"}
    except Exception as exc:
        return {"_feature_error": f"error: {type(exc).__name__}: {exc}"}


def _digest(parts: list[tuple[str, int, str]]) -> str:
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()
