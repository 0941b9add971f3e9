"""Headless runs (`workspace.run()`, `python flow.py`, `beprepared run`): in-process Dagster on the
workspace's persistent instance, so the history is the same one `dagster dev` shows later.

Only what is stale runs: per stage, images without a row, made with another fingerprint, or older than their
upstream row; grouped into contiguous insertion-order ranges, one run per (range, stage selection).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from beprepared_dagster.errors import RunFailed
from beprepared_dagster.nodes.base import SinkNode
from beprepared_dagster.orchestration.assets import asset_key
from beprepared_dagster.orchestration.defs import build_definitions
from beprepared_dagster.orchestration.discovery import discover
from beprepared_dagster.orchestration.instance import open_instance
from beprepared_dagster.orchestration.partitions import contiguous_ranges, partitions_name, range_tags
from beprepared_dagster.store import stages
from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster.workflow import Workflow

log = logging.getLogger("beprepared")


@dataclass
class PlannedRun:
    stages: list[str]
    first: str
    last: str


@dataclass
class RunSummary:
    workflow: str
    new_images: int = 0
    runs: list[PlannedRun] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)


def plan_runs(store: WorkspaceStore, workflow: Workflow, all_keys: list[str]) -> list[PlannedRun]:
    partitioned = [s for s in workflow.stages if not isinstance(s.node, SinkNode)]
    stale: dict[str, set[str]] = {}
    with store.db.connect() as conn:
        for stage in partitioned:
            own = stages.stale_images(
                conn, workflow.name, stage.name, stage.fingerprint, [i.name for i in stage.inputs], all_keys
            )
            for upstream in stage.inputs:
                own |= stale.get(upstream.name, set())
            stale[stage.name] = own
    groups: dict[tuple[str, ...], set[str]] = {}
    for key in set().union(*stale.values()) if stale else set():
        selection = tuple(s.name for s in partitioned if key in stale[s.name])
        groups.setdefault(selection, set()).add(key)
    runs = []
    for selection, keys in sorted(groups.items()):
        runs.extend(PlannedRun(list(selection), a, b) for a, b in contiguous_ranges(all_keys, keys))
    return runs


def run_workflow(
    workflow: Workflow,
    *,
    save: bool = True,
    log_level: str = "INFO",
    progress: Callable[[int, int, str], None] | None = None,
) -> RunSummary:
    """Discover new images, materialize every stale stage range, then Save. Raises RunFailed on failure.

    `progress(done, total, label)` is called before each run and once at the end (done == total)."""
    store = WorkspaceStore(workflow.workspace_dir)
    instance = open_instance(store)
    defs = build_definitions([workflow])
    assets = list(defs.assets or [])
    name = partitions_name(workflow)
    summary = RunSummary(workflow.name)
    try:
        found = discover(store, workflow, set(instance.get_dynamic_partitions(name)), log)
    except OSError as exc:
        raise RunFailed(f"workflow {workflow.name!r}: {exc}") from exc
    if found.new_keys:
        instance.add_dynamic_partitions(name, found.new_keys)
    summary.new_images = len(found.new_keys)
    all_keys = list(instance.get_dynamic_partitions(name))
    log.info(f"{workflow.name}: {len(all_keys)} images ({summary.new_images} new)")
    summary.runs = plan_runs(store, workflow, all_keys)
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    sinks = [asset_key(workflow, s) for s in workflow.stages if isinstance(s.node, SinkNode)]
    total = len(summary.runs) + (1 if save and sinks else 0)
    for done, planned in enumerate(summary.runs):
        if progress:
            progress(done, total, f"{', '.join(planned.stages)} ({planned.first[:8]}…{planned.last[:8]})")
        selection = [asset_key(workflow, workflow.stage(s)) for s in planned.stages]
        _materialize(
            summary, assets, selection, instance, run_config, range_tags(planned.first, planned.last)
        )
    if save and sinks:
        if progress:
            progress(total - 1, total, "save")
        _materialize(summary, assets, sinks, instance, run_config, {})
    if progress:
        progress(total, total, "done")
    return summary


def _materialize(
    summary: RunSummary, assets: list, selection: list, instance: Any, run_config: dict, tags: dict
) -> None:
    names = ", ".join(k.to_user_string() for k in selection)
    try:
        result = dg.materialize(
            assets,
            selection=selection,
            instance=instance,
            tags=tags,
            run_config=run_config,
            raise_on_error=False,
        )
    except Exception as exc:  # a definition or launch error, before any step ran
        raise RunFailed(f"run of {names} could not start: {exc}") from exc
    summary.run_ids.append(result.run_id)
    if not result.success:
        failures = [
            f"{e.step_key}: {e.event_specific_data.error.message.strip()}"  # type: ignore[union-attr]
            for e in result.all_events
            if e.is_step_failure and e.event_specific_data is not None
        ]
        raise RunFailed(
            f"run {result.run_id} of {names} failed: " + ("; ".join(failures) or "see the run log")
        )
