"""Sensors: per workflow, discovery (new files → partitions + ONE range run of the automated stages) which also
catches up stale automated ranges; per human stage, labels (new labels → runs of exactly those partitions
through that stage and the stages below it). Both plan from DuckDB and the label journal (planning.py), launch
nothing while a run of the workflow is queued or running, and name runs by their work so a tick repeated
after a crash requests nothing twice."""

from __future__ import annotations

import json
import os
import time

import dagster as dg

from beprepared_dagster.nodes.base import HumanNode, SinkNode
from beprepared_dagster.orchestration.assets import asset_key
from beprepared_dagster.orchestration.discovery import discover, load_nodes
from beprepared_dagster.orchestration.partitions import partitions_def, partitions_name, range_tags
from beprepared_dagster.orchestration.planning import (
    PlannedRun,
    merged,
    owner,
    partitioned_stages,
    plan,
    state_token,
)
from beprepared_dagster.orchestration.stats import STATS_ASSET, stats_stages
from beprepared_dagster.orchestration.watch import watcher
from beprepared_dagster.store import order
from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster.workflow import Stage, Workflow

INTERVAL_ENV = "BEPREPARED_SENSOR_INTERVAL"
LABEL_INTERVAL_ENV = "BEPREPARED_LABEL_SENSOR_INTERVAL"
# Dagster recommends at most 25k partition additions per evaluation; the rest waits for the next tick.
MAX_NEW_PER_TICK = 10_000
MAX_RUNS_PER_TICK = 20
WORKFLOW_TAG, TRIGGER_TAG = "beprepared/workflow", "beprepared/trigger"
_ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def automated_names(workflow: Workflow) -> list[str]:
    """The partitioned stages above every human stage: what a discovery run materializes."""
    return [s.name for s in partitioned_stages(workflow) if owner(workflow, s.name) is None]


def automated_keys(workflow: Workflow) -> list[dg.AssetKey]:
    return [asset_key(workflow, workflow.stage(name)) for name in automated_names(workflow)]


def _busy(instance: dg.DagsterInstance, workflow: Workflow) -> bool:
    """A run of the workflow is queued or running: ours (tagged), or one the UI or a backfill launched
    (untagged, recognised by its assets)."""
    records = instance.get_run_records(filters=dg.RunsFilter(statuses=_ACTIVE), limit=100)
    for record in records:
        run = record.dagster_run
        if run.tags.get(WORKFLOW_TAG) == workflow.name:
            return True
        if any(key.path[0] == workflow.name for key in (run.asset_selection or ())):
            return True
    return False


def followers(workflow: Workflow, stage_names: list[str]) -> list[dg.AssetKey]:
    """The Save stages that read one of `stage_names` (and the statistics asset after a Save that writes
    them): a run that changes what a Save exports materializes it too, so the export follows by itself."""
    sinks = [
        s
        for s in workflow.stages
        if isinstance(s.node, SinkNode) and any(i.name in stage_names for i in s.inputs)
    ]
    keys = [asset_key(workflow, s) for s in sinks]
    if any(s.name in {t.name for t in stats_stages(workflow)} for s in sinks):
        keys.append(dg.AssetKey([workflow.name, STATS_ASSET]))
    return keys


def below(workflow: Workflow, stage_names: list[str]) -> list[str]:
    """`stage_names` and every partitioned stage downstream of them (stages are in topological order)."""
    found = set(stage_names)
    for stage in workflow.stages:
        if any(i.name in found for i in stage.inputs):
            found.add(stage.name)
    return [s.name for s in workflow.stages if s.name in found and not isinstance(s.node, SinkNode)]


def _requests(
    workflow: Workflow, runs: list[PlannedRun], trigger: str, reach: bool = False
) -> list[dg.RunRequest]:
    """One request per planned run; the last run that feeds a Save also exports (one export per tick,
    after the other runs of the tick: runs of a workflow execute one at a time, in order). With `reach`
    (label runs), a run also takes the stages below its own down to the Save: images waiting at a lower
    human stage then say so there (and in the Save's metadata) instead of keeping a stale "waiting above"."""
    chosen = [below(workflow, r.stages) if reach else r.stages for r in runs]
    follow = [followers(workflow, c) for c in chosen]
    last = max((i for i, f in enumerate(follow) if f), default=-1)
    return [
        dg.RunRequest(
            run_key=f"{trigger}-{run.key}",
            asset_selection=[asset_key(workflow, workflow.stage(s)) for s in chosen[i]]
            + (follow[i] if i == last else []),
            tags={**range_tags(run.first, run.last), WORKFLOW_TAG: workflow.name, TRIGGER_TAG: trigger},
        )
        for i, run in enumerate(runs)
    ]


def build_discovery_sensor(workflow: Workflow) -> dg.SensorDefinition:
    parts = partitions_def(workflow)
    store = WorkspaceStore(workflow.workspace_dir)
    automated = automated_keys(workflow)

    folders = [node.dir for node in load_nodes(workflow)]

    @dg.sensor(
        name=f"{workflow.name}_discover_images",
        minimum_interval_seconds=int(os.environ.get(INTERVAL_ENV, "2")),
        default_status=dg.DefaultSensorStatus.RUNNING,
        target=[asset_key(workflow, s) for s in partitioned_stages(workflow)],
        description=(
            f"Scans the Load folders of {workflow.name!r} when files change in them (and every few minutes); "
            "new images become partitions and one run."
        ),
    )
    def _discover(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        # The first tick in this process always scans (changes while it was down were not watched).
        last = _last_scan(context.cursor) if workflow.name in _SCANNED_HERE else None
        why = watcher().due(folders, last)
        if why is None:
            return dg.SkipReason("no file changed in the Load folders since the last scan")
        watcher().scanned(folders)
        _SCANNED_HERE.add(workflow.name)
        context.update_cursor(json.dumps({"last_scan": time.time()}))
        existing = list(context.instance.get_dynamic_partitions(partitions_name(workflow)))
        found = discover(store, workflow, set(existing), context.log)
        if not found.new_keys:
            return _catch_up(context, store, workflow, existing, found.files)
        new = found.new_keys[:MAX_NEW_PER_TICK]
        with store.db.connect() as conn:
            order.append_order(conn, workflow.name, existing + new)
        context.log.info(f"{len(new)} new image(s) of {found.files} file(s); launching one run over them")
        return dg.SensorResult(
            dynamic_partitions_requests=[parts.build_add_request(new)],
            run_requests=[
                dg.RunRequest(
                    run_key=f"discover-{new[0][:16]}-{new[-1][:16]}-{len(new)}",
                    asset_selection=automated + followers(workflow, automated_names(workflow)),
                    tags={
                        **range_tags(new[0], new[-1]),
                        WORKFLOW_TAG: workflow.name,
                        TRIGGER_TAG: "discovery",
                    },
                )
            ],
        )

    return _discover


_SCANNED_HERE: set[str] = set()  # workflows whose folders this process has scanned


def _last_scan(cursor: str | None) -> float | None:
    try:
        return float(json.loads(cursor or "{}")["last_scan"])
    except (ValueError, KeyError, TypeError):
        return None


def _catch_up(
    context: dg.SensorEvaluationContext,
    store: WorkspaceStore,
    workflow: Workflow,
    keys: list[str],
    files: int,
) -> dg.SensorResult | dg.SkipReason:
    """No new images: launch runs for stale ranges of the automated stages (e.g. below a set-level stage
    whose decisions changed), unless a run of the workflow is in flight."""
    idle = f"no new images ({files} files, {len(keys)} images known)"
    if not keys or _busy(context.instance, workflow):
        return dg.SkipReason(idle)
    runs = [r for r in plan(store, workflow, keys).runs if owner(workflow, r.stages[0]) is None]
    if not runs:
        return dg.SkipReason(idle + "; nothing stale")
    context.log.info(f"{len(runs)} stale range(s) of automated stages; launching them")
    return dg.SensorResult(run_requests=_requests(workflow, runs[:MAX_RUNS_PER_TICK], "catch-up"))


def build_label_sensor(workflow: Workflow, stage: Stage) -> dg.SensorDefinition:
    store = WorkspaceStore(workflow.workspace_dir)

    @dg.sensor(
        name=f"{workflow.name}_{stage.name}_labels",
        minimum_interval_seconds=int(os.environ.get(LABEL_INTERVAL_ENV, "5")),
        default_status=dg.DefaultSensorStatus.RUNNING,
        target=[asset_key(workflow, s) for s in partitioned_stages(workflow)],
        description=(
            f"Turns new labels of {workflow.name}/{stage.name} into runs of exactly the labeled images "
            "through this stage and the stages below it."
        ),
    )
    def _labels(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        if _busy(context.instance, workflow):
            return dg.SkipReason("a run of this workflow is queued or running; labels wait for it")
        if state_token(store, workflow) == context.cursor:
            return dg.SkipReason("no new labels and no new results since the last tick")
        keys = list(context.instance.get_dynamic_partitions(partitions_name(workflow)))
        planned = plan(store, workflow, keys)
        runs = [r for r in planned.runs if owner(workflow, r.stages[0]) == stage.name]
        if getattr(stage.node, "kind", "") == "rank":  # scores move everywhere: one run, not one per gap
            runs = merged(workflow, runs, keys, planned.token)
        waiting = planned.waiting.get(stage.name, 0)
        if not runs:
            return dg.SensorResult(
                skip_reason=f"nothing to apply ({waiting} image(s) wait)", cursor=planned.token
            )
        context.log.info(
            f"{sum(r.images for r in runs)} image(s) in {len(runs)} range(s) to apply; {waiting} still wait"
        )
        requests = _requests(workflow, runs[:MAX_RUNS_PER_TICK], f"labels-{stage.name}", reach=True)
        cursor = planned.token if len(runs) <= MAX_RUNS_PER_TICK else context.cursor
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return _labels


def build_sensors(workflow: Workflow) -> list[dg.SensorDefinition]:
    sensors = [build_discovery_sensor(workflow)]
    sensors += [build_label_sensor(workflow, s) for s in workflow.stages if isinstance(s.node, HumanNode)]
    return sensors
