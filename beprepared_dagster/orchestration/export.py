"""Running Save: gather the kept images of its stage that still exist in a Load folder, then export."""

from __future__ import annotations

from typing import Any

from beprepared_dagster.export.folder import ExportReport, export_folder
from beprepared_dagster.nodes.save import Save
from beprepared_dagster.orchestration.discovery import load_nodes
from beprepared_dagster.store import files, stages
from beprepared_dagster.store.stages import KEPT
from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster.workflow import Stage, Workflow


def run_save(store: WorkspaceStore, workflow: Workflow, stage: Stage, log: Any) -> ExportReport:
    node: Save = stage.node  # type: ignore[assignment]
    source = stage.inputs[0].name
    roots = [str(n.dir) for n in load_nodes(workflow)]
    with store.db.connect() as conn:
        rows = stages.read_rows(conn, workflow.name, source)
        present = files.present_hashes(conn, roots)
    kept = [r for image_rows in rows.values() for r in image_rows if r.status == KEPT]
    gone = [r for r in kept if r.image_id not in present]
    if gone:
        log.info(f"{len(gone)} kept image(s) left out: their source file was deleted or changed")
    unprocessed = len(present - set(rows))
    if unprocessed:
        log.warning(
            f"{unprocessed} discovered image(s) are not processed by {source!r} yet and are not exported"
        )
    target = store.resolve_output(node.dir)
    report = export_folder(
        target, [r for r in kept if r.image_id in present], store.objects, node, workflow.name
    )
    if report.unchanged:
        log.info(f"{target}: unchanged ({report.images} images), nothing rewritten")
    else:
        log.info(
            f"{target}: {report.images} images; {report.written} file(s) written, {report.linked} unchanged, "
            f"{report.removed} removed, in {report.seconds:.2f}s"
        )
    return report


def gallery_strip(store: WorkspaceStore, report: ExportReport, count: int = 6) -> str:
    from beprepared_dagster.orchestration.metadata import thumbnail_markdown

    thumbs = [t for t in (thumbnail_markdown(store.objects, o) for o in report.object_ids[:count]) if t]
    return " ".join(thumbs) or "_empty export_"
