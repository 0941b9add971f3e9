"""Running a Save node: gather the kept images of its stage that still exist in a Load folder, then export."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from beprepared_dagster.errors import BeprepareError, WorkflowError
from beprepared_dagster.export.atomic import ExportReport
from beprepared_dagster.export.dataset import export_dataset
from beprepared_dagster.nodes.save import SaveNode
from beprepared_dagster.orchestration.discovery import load_nodes
from beprepared_dagster.store import stages
from beprepared_dagster.store.stages import Row
from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster.workflow import Stage, Workflow


def export_target(store: WorkspaceStore, node: SaveNode) -> Path:
    """The folder a Save node writes: its `dir` (relative to the workspace) or its layout's default."""
    return store.resolve_output(node.dir if node.dir is not None else node.default_dir)


def kept_rows(
    store: WorkspaceStore, workflow: Workflow, stage: Stage, log: Any, parse: bool = True
) -> list[Row]:
    """The rows a Save stage exports: kept by its upstream stage, source file still present. `parse=False`:
    their stored texts only (`stages.read_export`)."""
    source = stage.inputs[0].name
    roots = [str(n.dir) for n in load_nodes(workflow)]
    with store.db.connect() as conn:
        found = stages.read_export(conn, workflow.name, source, roots, parse)
    if found.gone:
        log.info(f"{found.gone} kept image(s) left out: their source file was deleted or changed")
    if found.unprocessed:
        log.warning(
            f"{found.unprocessed} discovered image(s) are not processed by {source!r} yet and are not exported"
        )
    return found.rows


def waiting_for_labels(store: WorkspaceStore, workflow: Workflow, all_keys: list[str]) -> dict[str, int]:
    """Per human stage, the images that still wait for a label there (so no Save exports them yet)."""
    from beprepared_dagster.nodes.base import HumanNode
    from beprepared_dagster.orchestration.planning import plan

    if not any(isinstance(s.node, HumanNode) for s in workflow.stages):
        return {}  # only a human stage makes images wait

    return {stage: n for stage, n in plan(store, workflow, all_keys).waiting.items() if n}


def check_targets(store: WorkspaceStore, workflow: Workflow) -> None:
    """Refuse exports that would clobber each other (same or nested folders) or feed back into a Load folder
    (discovery would pick the exported copies up as new images)."""
    targets = [
        (s.name, export_target(store, s.node)) for s in workflow.stages if isinstance(s.node, SaveNode)
    ]
    for name, path in targets:
        for load in load_nodes(workflow):
            source = Path(load.dir).expanduser().resolve()
            if path == source or source in path.parents or path in source.parents:
                raise WorkflowError(
                    f"stage {name!r} would export to {path}, which overlaps the Load folder {source}; "
                    "export somewhere else"
                )
    for i, (name, path) in enumerate(targets):
        for other, other_path in targets[i + 1 :]:
            if path == other_path or path in other_path.parents or other_path in path.parents:
                raise WorkflowError(
                    f"stages {name!r} and {other!r} export to the same or nested folders ({path}, {other_path});"
                    " give each Save its own dir"
                )


def run_save(
    store: WorkspaceStore, workflow: Workflow, stage: Stage, log: Any, all_keys: list[str] | None = None
) -> ExportReport:
    """Export the stage's kept images; log what was written and (given the workflow's images) how many
    still wait for a label."""
    node: SaveNode = stage.node  # type: ignore[assignment]
    if node.stats:
        from beprepared_dagster.export.clip_tokens import preload

        preload()  # the token counts' vocabulary loads while the rows are read
    check_targets(store, workflow)
    rows = kept_rows(store, workflow, stage, log)
    target = export_target(store, node)
    report = export_dataset(target, rows, store.objects, node, workflow.name)
    report.waiting = waiting_for_labels(store, workflow, all_keys) if all_keys else {}
    for human_stage, n in report.waiting.items():
        log.info(f"{n} image(s) still wait for a label at {human_stage}: they join the export once labeled")
    if report.unchanged:
        log.info(f"{target}: unchanged ({report.images} images), nothing rewritten")
    else:
        log.info(
            f"{target}: {report.images} images ({node.layout} layout); {report.written} file(s) written, "
            f"{report.linked} unchanged, {report.removed} removed, in {report.seconds:.2f}s"
        )
    return report


def export_is_current(store: WorkspaceStore, workflow: Workflow, stage: Stage) -> bool:
    """Whether the stage's folder already holds what a Save would write now: the same kept rows, Save node,
    title and export code, every file as it was written (`export.dataset.unchanged_export`). A headless run
    that changed nothing then starts no Dagster run for it. Any doubt (a refused target, an unreadable
    manifest) says no, and the Save runs and reports it."""
    from beprepared_dagster.export.dataset import inputs_digest, unchanged_export

    node: SaveNode = stage.node  # type: ignore[assignment]
    try:
        check_targets(store, workflow)
        rows = kept_rows(store, workflow, stage, _QUIET, parse=False)  # only hashed
        target = export_target(store, node)
        return unchanged_export(target, inputs_digest(rows, node, workflow.name), node) is not None
    except (BeprepareError, OSError, ValueError):
        return False


_QUIET = logging.getLogger("beprepared.export.check")
_QUIET.disabled = True  # drops what kept_rows says while checking (the Save that runs says it)


def gallery_strip(store: WorkspaceStore, report: ExportReport, count: int = 6) -> str:
    """A few thumbnails of the export, as Markdown for the Save asset's metadata."""
    from beprepared_dagster.orchestration.metadata import thumbnail_markdown

    thumbs = [t for t in (thumbnail_markdown(store.objects, o) for o in report.object_ids[:count]) if t]
    if thumbs:
        return " ".join(thumbs)
    if report.waiting:
        waiting = ", ".join(f"{n} at {stage}" for stage, n in report.waiting.items())
        return f"_empty export: images wait for a label ({waiting})_"
    return "_empty export_"
