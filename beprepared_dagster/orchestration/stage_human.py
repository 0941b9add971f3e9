"""Human stages in the executor: each image's outcome comes from the latest label in the journal.

An image kept upstream and not labeled yet gets a `pending` row ("waiting for a label"): the range stays
whole, nothing below exports it, and the planner re-plans it once a label arrives. Each materialization also
mirrors the labels into DuckDB and records which journal entry each row was computed from, so a re-label
(a newer entry) makes exactly that image stale.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from beprepared_dagster.nodes.base import HumanNode, Image
from beprepared_dagster.store import human, stages
from beprepared_dagster.store.stages import KEPT, PENDING, Row

if TYPE_CHECKING:
    from beprepared_dagster.orchestration.executor import StageExecutor, StageReport
    from beprepared_dagster.workflow import Stage

WAITING = "waiting for a label"


def run_human(executor: StageExecutor, stage: Stage, keys: list[str], report: StageReport) -> None:
    from beprepared_dagster.orchestration.executor import chunks

    node: HumanNode = stage.node  # type: ignore[assignment]
    upstream = stage.inputs[0].name
    workflow = executor.workflow.name
    for chunk in chunks(keys, 4096):
        with executor.store.db.connect() as conn:
            inputs = stages.read_rows(conn, workflow, upstream, chunk)
        executor._check_complete(stage, upstream, chunk, inputs)
        labels = current_labels(node, executor.store.journal, chunk)
        rows: list[Row] = []
        for image_id in chunk:
            label = labels.get(image_id)
            value = label.value if label else None
            rows.extend(_row(executor, stage, node, row, value) for row in inputs[image_id])
        applied = {k: (labels[k].id if k in labels else 0) for k in chunk}

        def also(conn: Any, labels: dict = labels, applied: dict = applied) -> None:
            human.mirror_labels(conn, list(labels.values()))
            human.record_applied(conn, workflow, stage.name, applied)

        executor._write(stage, rows, report, cache_values={}, also=also)


def current_labels(node: HumanNode, journal: Any, image_ids: Any = None) -> dict[str, Any]:
    """The label each image of the stage is decided by: the latest journal entry, or for a stage that derives
    its labels from many entries (HumanRank: a fit over every comparison), the derived one."""
    derive = getattr(node, "derive_labels", None)
    if derive is not None:
        return derive(journal, image_ids)
    domain, kind = node.label_key()
    return journal.latest(domain, kind, image_ids)


def _row(executor: StageExecutor, stage: Stage, node: HumanNode, row: Row, value: Any) -> Row:
    if row.status != KEPT:
        return executor._apply(stage, row, None)
    outcome = node.outcome(Image(row.props), value)
    if outcome is None:
        return Row(row.image_id, row.seq, PENDING, WAITING, stage.name, row.props)
    return executor._apply(stage, row, outcome)


def is_ready(node: HumanNode, upstream: list[Row], value: Any) -> bool:
    """Whether the stage can decide this image now (so a run of it is worth launching)."""
    return all(r.status != KEPT or node.outcome(Image(r.props), value) is not None for r in upstream)
