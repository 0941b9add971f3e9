"""The one asset factory: every stage of every workflow becomes an asset the same way.

Partitioned stage assets process `context.partition_keys` (a whole range in one run, single-run backfill
policy), write DuckDB themselves and return None; `Save` is an unpartitioned asset over its stage.
"""

import warnings

import dagster as dg

from beprepared_dagster.errors import BeprepareError
from beprepared_dagster.export.dataset import STATS_HTML
from beprepared_dagster.export.folder import ExportReport
from beprepared_dagster.labeling.urls import tab_url
from beprepared_dagster.nodes.base import HumanNode, SinkNode
from beprepared_dagster.nodes.model import ModelNode
from beprepared_dagster.orchestration import metadata
from beprepared_dagster.orchestration.executor import StageExecutor, StageReport
from beprepared_dagster.orchestration.export import run_save
from beprepared_dagster.orchestration.partition_metadata import add_partition_metadata, event_order
from beprepared_dagster.orchestration.partitions import partitions_def, partitions_name
from beprepared_dagster.orchestration.writer import stage_session
from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster.workflow import Stage, Workflow


def asset_key(workflow: Workflow, stage: Stage) -> dg.AssetKey:
    return dg.AssetKey([workflow.name, stage.name])


def describe(workflow: Workflow, stage: Stage) -> str:
    """The asset's description, in plain text: the Catalog list and the asset graph show descriptions as
    text, not markdown (a markdown link there reads `**Label it here: [url](url)**`). The asset page renders
    markdown, and a bare URL becomes a link there; the definition metadata carries the link as a URL too."""
    node = stage.node
    template = type(node).description or type(node).__doc__ or type(node).__name__
    try:
        names = ", ".join(getattr(node, "all_tags", None) or node.params)
        text = template.format(**node.params, names=names)
    except (KeyError, IndexError, ValueError):
        text = template
    text = " ".join(text.strip().split("\n\n")[0].replace("`", "").split())
    if isinstance(node, HumanNode):
        text += f"\n\nLabel it at {tab_url(workflow.name, stage.name)}"
    return text


def build_stage_assets(workflow: Workflow) -> list[dg.AssetsDefinition]:
    parts = partitions_def(workflow)
    store = WorkspaceStore(workflow.workspace_dir)
    built = []
    for stage in workflow.stages:
        if isinstance(stage.node, SinkNode):
            built.append(_save_asset(workflow, stage, store))
        else:
            built.append(_partitioned_asset(workflow, stage, store, parts))
    return built


def _common(workflow: Workflow, stage: Stage) -> dict:
    return {
        "key": asset_key(workflow, stage),
        "group_name": workflow.name,
        "description": describe(workflow, stage),
        "deps": [asset_key(workflow, s) for s in stage.inputs],
        # A changed parameter shows as a new code version, so the UI flags the stage and everything below.
        "code_version": stage.fingerprint[:16],
        "kinds": {"beprepared"},
        "metadata": {
            "node": type(stage.node).__name__,
            "parameters": repr(stage.node),
            "fingerprint": stage.fingerprint[:12],
            "workspace": str(workflow.workspace_dir),
            **(
                {"labeling_tab": dg.MetadataValue.url(tab_url(workflow.name, stage.name))}
                if isinstance(stage.node, HumanNode)
                else {}
            ),
        },
    }


def _partitioned_asset(
    workflow: Workflow, stage: Stage, store: WorkspaceStore, parts: dg.DynamicPartitionsDefinition
) -> dg.AssetsDefinition:
    def _stage_asset(context: dg.AssetExecutionContext) -> None:
        keys = context.partition_keys
        context.log.info(f"{stage.name}: {len(keys)} image(s)")
        try:
            # One writer per workspace: a headless run or another run on it finishes first (writer.py).
            with stage_session(store, f"Dagster run {context.run_id[:8]}", context.log) as on_progress:
                report = StageExecutor(store, workflow, context.log, context.run_id, on_progress).run(
                    stage, keys
                )
        except BeprepareError as exc:  # a node's own failure, a missing model…: the message is the point
            raise dg.Failure(description=f"{stage.name}: {exc}") from exc
        _report_metadata(context, store, report, keys)
        context.log.info(metadata.summary_line(report))
        if report.errors:
            raise dg.Failure(
                f"{stage.name}: {len(report.errors)} image(s) failed unexpectedly (see the log above); "
                f"the other {report.images - len(report.errors)} were stored and will not be recomputed"
            )

    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", dg.BetaWarning
        )  # backfill_policy is beta; it is the point of the design
        # Model stages share the `gpu` pool: with more than one run at a time allowed, `dagster instance
        # concurrency set gpu 1` keeps two runs from loading models onto the same cards.
        pool = {"pool": "gpu"} if isinstance(stage.node, ModelNode) else {}
        return dg.asset(
            partitions_def=parts,
            backfill_policy=dg.BackfillPolicy.single_run(),
            **pool,
            **_common(workflow, stage),
        )(_stage_asset)


def _report_metadata(
    context: dg.AssetExecutionContext, store: WorkspaceStore, report: StageReport, keys: list[str]
) -> None:
    """Each partition gets its image's own small metadata; the run's summary goes on the materialization
    Dagster stores last (the asset's latest), not on every partition (it would bloat the event log)."""
    in_run = set(keys)  # a set-level stage reports on images outside the run's range too
    per_partition = {k: metadata.image_metadata(r) for k, r in report.per_image.items() if k in in_run}
    for row in [r for r in report.preview if r.image_id in in_run][:4]:
        thumb = metadata.thumbnail_markdown(store.objects, row.props["objectid"])
        if thumb:
            per_partition[row.image_id]["thumbnail"] = dg.MetadataValue.md(thumb)
    order = event_order(context, keys)
    last = order[-1] if order else keys[-1]
    per_partition[last] = {**per_partition.get(last, {}), **metadata.stage_metadata(report)}
    add_partition_metadata(context, per_partition)


def _save_asset(workflow: Workflow, stage: Stage, store: WorkspaceStore) -> dg.AssetsDefinition:
    @dg.asset(**_common(workflow, stage))
    def _save(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        try:
            keys = list(context.instance.get_dynamic_partitions(partitions_name(workflow)))
            with stage_session(store, f"Dagster run {context.run_id[:8]}", context.log) as on_progress:
                if on_progress is not None:  # a headless run's bar: now exporting
                    on_progress(stage.name, 0, 1)
                report: ExportReport = run_save(store, workflow, stage, context.log, keys)
        except BeprepareError as exc:  # a refused folder, clashing targets…: the message is the point
            raise dg.Failure(description=f"{stage.name}: {exc}") from exc
        return dg.MaterializeResult(metadata=save_metadata(store, report))

    return _save


def save_metadata(store: WorkspaceStore, report: ExportReport) -> dict:
    from beprepared_dagster.orchestration.export import gallery_strip

    return {
        "path": dg.MetadataValue.path(str(report.path)),
        "images": report.images,
        "captions": report.captions,
        "files_written": report.written,
        "files_unchanged": report.linked,
        "files_removed": report.removed,
        "unchanged": report.unchanged,
        "seconds": round(report.seconds, 3),
        "gallery": dg.MetadataValue.path(str(report.path / "index.html")),
        "preview": dg.MetadataValue.md(gallery_strip(store, report)),
        "layout": report.layout,
        **({"stats_report": dg.MetadataValue.path(str(report.path / STATS_HTML))} if report.stats else {}),
        **(
            {"waiting_for_label": ", ".join(f"{n} at {stage}" for stage, n in report.waiting.items())}
            if report.waiting
            else {}
        ),
    }
