"""Smart human stages (SmartHumanFilter, SmartHumanTag) in the executor: set-level human stages.

Whatever range a run covers, the stage reads every kept upstream image, every label of its domain and the
images' stored embeddings, lets the node train (or find its stored model for exactly these labels) and
decide, and writes rows for all images: a person's label where there is one, the model's call elsewhere, or
`pending` with the reason (too few labels, accuracy too low, uncertain with `when_uncertain='human'`). Rows
that come out unchanged keep their timestamp, so only images whose decision changed go stale below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from beprepared_dagster.errors import StageFailed
from beprepared_dagster.nodes.base import Image, Outcome
from beprepared_dagster.nodes.smart import summary_line
from beprepared_dagster.store import human, learned, order, stages
from beprepared_dagster.store.stages import KEPT, PENDING, Row

if TYPE_CHECKING:
    from beprepared_dagster.nodes.smart import SmartNode
    from beprepared_dagster.orchestration.executor import StageExecutor, StageReport
    from beprepared_dagster.workflow import Stage


def run_smart(executor: StageExecutor, stage: Stage, keys: list[str], report: StageReport) -> None:
    from beprepared_dagster.nodes.embeddings import embedding_refs

    node: SmartNode = stage.node  # type: ignore[assignment]
    domain, kind = node.label_key()
    upstream, workflow = stage.inputs[0].name, executor.workflow.name
    with executor.store.db.connect() as conn:
        inputs = stages.read_rows(conn, workflow, upstream)
        ranked = {k: i for i, k in enumerate(order.ordered_ids(conn, workflow))}
    executor._check_complete(stage, upstream, keys, inputs)
    ids = sorted(inputs, key=lambda k: (ranked.get(k, len(ranked)), k))
    latest = executor.store.journal.latest(domain, kind)
    kept = [r for k in ids for r in inputs[k] if r.status == KEPT]
    images = [Image(r.props) for r in kept]
    labels = [_label(node, latest.get(r.image_id)) for r in kept]
    ctx = executor._context(stage)
    try:
        vectors = embedding_refs(images, node.params["embedding"], type(node).__name__, ctx)
        models = learned.LearnedModels(executor.store.db, executor.store.objects)
        result = node.decide(images, labels, vectors, models, executor.log)
    except ValueError as exc:
        raise StageFailed(f"{stage.name}: {exc}") from exc
    decided = {(r.image_id, r.seq): o for r, o in zip(kept, result.outcomes, strict=True)}
    rows = [_row(executor, stage, r, decided.get((r.image_id, r.seq))) for k in ids for r in inputs[k]]
    applied = {k: (latest[k].id if k in latest else 0) for k in ids}

    def also(conn: Any) -> None:
        human.mirror_labels(conn, [latest[k] for k in ids if k in latest])
        human.record_applied(conn, workflow, stage.name, applied)
        learned.record_stage(conn, workflow, stage.name, result.key, result.summary)

    report.images = len(ids)
    report.computed += 1
    report.extra.update(summary_metadata(result.summary))
    executor.log.info(f"{stage.name}: {summary_line(result.summary)}")
    executor._write(stage, rows, report, cache_values={}, also=also)


def _label(node: SmartNode, label: Any) -> Any:
    value = label.value if label is not None else None
    return value if value is not None and node.is_labeled(value) else None


def _row(executor: StageExecutor, stage: Stage, row: Row, decided: Outcome | str | None) -> Row:
    if row.status != KEPT or decided is None:
        return executor._apply(stage, row, None)
    if isinstance(decided, str):
        return Row(row.image_id, row.seq, PENDING, decided, stage.name, row.props)
    return executor._apply(stage, row, decided)


def summary_metadata(summary: dict[str, Any]) -> dict[str, Any]:
    """What the materialization shows: accuracy, the confusion matrix (markdown), images the model decided."""
    import dagster as dg

    from beprepared_dagster.learning.evaluate import confusion_markdown

    meta: dict[str, Any] = {
        "decided_by_model": summary.get("decided_by_model", 0),
        "labels": dg.MetadataValue.json(summary.get("labels") or {}),
    }
    for key in ("accuracy", "confident_accuracy", "held_out", "uncertain", "waiting_because"):
        if summary.get(key) is not None:
            meta[f"model_{key}" if key != "waiting_because" else key] = summary[key]
    if summary.get("confusion"):
        meta["confusion_matrix"] = dg.MetadataValue.md(confusion_markdown(summary["confusion"]))
    if summary.get("tags"):
        meta["tags_held_out"] = dg.MetadataValue.json(summary["tags"])
    return meta
