"""The one asset factory: every stage of every workflow becomes an asset the same way.

Partitioned stage assets process `context.partition_keys` (a whole range in one run, single-run backfill
policy), write DuckDB themselves and return None; `Save` is an unpartitioned asset over its stage.
"""

import warnings

import dagster as dg

from beprepared_dagster.errors import BeprepareError, StageFailed
from beprepared_dagster.export.dataset import STATS_HTML
from beprepared_dagster.export.folder import ExportReport
from beprepared_dagster.labeling.urls import tab_url
from beprepared_dagster.nodes.base import HumanNode, SinkNode
from beprepared_dagster.nodes.model import ModelNode
from beprepared_dagster.orchestration import metadata
from beprepared_dagster.orchestration.executor import StageExecutor
from beprepared_dagster.orchestration.export import run_save
from beprepared_dagster.orchestration.partitions import partitions_def, partitions_name
from beprepared_dagster.orchestration.writer import stage_session
from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster.workflow import Stage, Workflow


def asset_key(workflow: Workflow, stage: Stage) -> dg.AssetKey:
    return dg.AssetKey([workflow.name, stage.name])


def describe(workflow: Workflow, stage: Stage) -> str:
    node = stage.node
    template = type(node).description or type(node).__doc__ or type(node).__name__
    try:
        names = ", ".join(getattr(node, "all_tags", None) or node.params)
        text = template.format(**node.params, names=names)
    except (KeyError, IndexError, ValueError):
        text = template
    text = text.strip().split("\n\n")[0]
    if isinstance(node, HumanNode):
        text += f"\n\n**Label it here: [{tab_url(workflow.name, stage.name)}]({tab_url(workflow.name, stage.name)})**"
    return f"{text}\n\n`{node!r}` · fingerprint `{node.fingerprint[:12]}`"


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
        except StageFailed as exc:
            raise dg.Failure(description=str(exc)) from exc
        context.add_asset_metadata(metadata.stage_metadata(report))
        in_run = set(keys)  # a set-level stage reports on images outside the run's range too
        for row in [r for r in report.preview if r.image_id in in_run][:4]:
            thumb = metadata.thumbnail_markdown(store.objects, row.props["objectid"])
            if thumb:
                context.add_asset_metadata(
                    {"thumbnail": dg.MetadataValue.md(thumb)}, partition_key=row.image_id
                )
        context.log.info(
            f"{stage.name}: {report.kept} kept, {sum(report.rejected.values())} rejected here "
            f"{dict(report.rejected) or ''}, {report.rejected_upstream} rejected upstream, "
            f"{report.cache_hits} cache hits, {report.computed} computed in {report.seconds:.2f}s"
        )
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


def _save_asset(workflow: Workflow, stage: Stage, store: WorkspaceStore) -> dg.AssetsDefinition:
    @dg.asset(**_common(workflow, stage))
    def _save(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        try:
            keys = list(context.instance.get_dynamic_partitions(partitions_name(workflow)))
            with stage_session(store, f"Dagster run {context.run_id[:8]}", context.log):
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
