"""Headless runs (`workspace.run()`, `python flow.py`, `beprepared run`): in-process Dagster on the
workspace's persistent instance, so the history is the same one `dagster dev` shows later.

Only what is stale runs (see planning.py): grouped into contiguous insertion-order ranges, one run per (range,
stage selection), re-planned after each round until nothing is stale. At a human stage the run waits for
labels (serving the labeling app) or, with `wait=False`, stops there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from beprepared_dagster.errors import RunFailed
from beprepared_dagster.labeling.urls import tab_url
from beprepared_dagster.nodes.base import SinkNode
from beprepared_dagster.orchestration.assets import asset_key
from beprepared_dagster.orchestration.defs import build_definitions
from beprepared_dagster.orchestration.discovery import discover
from beprepared_dagster.orchestration.instance import open_instance
from beprepared_dagster.orchestration.partitions import partitions_name, range_tags
from beprepared_dagster.orchestration.planning import PlannedRun, plan
from beprepared_dagster.store import order
from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster.workflow import Workflow

log = logging.getLogger("beprepared")


@dataclass
class RunSummary:
    workflow: str
    new_images: int = 0
    runs: list[PlannedRun] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    waiting: dict[str, int] = field(default_factory=dict)  # human stage → images left unlabeled (no-wait)
    saved: bool = False


def run_workflow(
    workflow: Workflow,
    *,
    save: bool = True,
    wait: bool = True,
    log_level: str = "INFO",
    progress: Callable[[int, int, str], None] | None = None,
    poll_seconds: float = 2.0,
) -> RunSummary:
    """Discover new images, materialize every stale stage range, wait for labels at human stages (or stop
    there when `wait` is False), then Save. Raises RunFailed on failure.

    `progress(done, total, label)` is called before each run and once at the end (done == total)."""
    store = WorkspaceStore(workflow.workspace_dir)
    instance = open_instance(store)
    assets = list(build_definitions([workflow]).assets or [])
    summary = RunSummary(workflow.name)
    all_keys = _discover(store, workflow, instance, summary)
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    sinks = [asset_key(workflow, s) for s in workflow.stages if isinstance(s.node, SinkNode)]
    done, rounds = 0, 0
    with store.db.connect() as conn:  # outcomes flagged for retry before this run are computed again
        started = conn.execute("SELECT current_timestamp::TIMESTAMP").fetchone()[0]
    while True:
        planned = plan(store, workflow, all_keys, retry_before=started)
        if planned.runs:
            rounds += 1
            if rounds > len(workflow.stages) + 3:
                raise RunFailed(
                    f"workflow {workflow.name!r}: planning did not settle after {rounds - 1} rounds"
                )
            total = done + len(planned.runs) + (1 if save and sinks else 0)
            for run in planned.runs:
                if progress:
                    progress(done, total, f"{', '.join(run.stages)} ({run.images} image(s))")
                selection = [asset_key(workflow, workflow.stage(s)) for s in run.stages]
                tags = {**range_tags(run.first, run.last), "beprepared/workflow": workflow.name}
                _materialize(summary, assets, selection, instance, run_config, tags)
                summary.runs.append(run)
                done += 1
            continue
        waiting = {stage: n for stage, n in planned.waiting.items() if n}
        if not waiting:
            break
        if not wait:
            summary.waiting = waiting
            for stage, n in waiting.items():
                log.info(
                    f"{workflow.name}/{stage}: {n} image(s) wait for a label at {tab_url(workflow.name, stage)}"
                )
            log.info(f"{workflow.name}: stopped at the human stage(s) (no-wait); Save was not run")
            return summary
        rounds = 0
        _wait_for_labels(store, workflow, all_keys, waiting, poll_seconds)
    if save and sinks:
        if progress:
            progress(done, done + 1, "save")
        _materialize(summary, assets, sinks, instance, run_config, {"beprepared/workflow": workflow.name})
        summary.saved = True
    if progress:
        progress(done + 1, done + 1, "done")
    return summary


def _discover(store: WorkspaceStore, workflow: Workflow, instance: Any, summary: RunSummary) -> list[str]:
    name = partitions_name(workflow)
    try:
        found = discover(store, workflow, set(instance.get_dynamic_partitions(name)), log)
    except OSError as exc:
        raise RunFailed(f"workflow {workflow.name!r}: {exc}") from exc
    if found.new_keys:
        instance.add_dynamic_partitions(name, found.new_keys)
    summary.new_images = len(found.new_keys)
    all_keys = list(instance.get_dynamic_partitions(name))
    with store.db.connect() as conn:
        order.append_order(conn, workflow.name, all_keys)
    log.info(f"{workflow.name}: {len(all_keys)} images ({summary.new_images} new)")
    return all_keys


def _wait_for_labels(
    store: WorkspaceStore, workflow: Workflow, all_keys: list[str], waiting: dict[str, int], poll: float
) -> None:
    """Serve the labeling app (unless one already serves this workspace), print the tabs, and return once
    every image waiting at those stages is labeled (the stage is complete, as in the original)."""
    from beprepared_dagster.labeling.launcher import ensure_serving

    ensure_serving([workflow])
    for stage, n in waiting.items():
        log.info(f"{workflow.name}/{stage}: {n} image(s) to label at {tab_url(workflow.name, stage)}")
    journal_at = store.journal.max_id()
    while True:
        time.sleep(poll)
        if store.journal.max_id() == journal_at:
            continue
        journal_at = store.journal.max_id()
        planned = plan(store, workflow, all_keys)
        left = {stage: n for stage, n in planned.waiting.items() if n}
        if not any(left.get(s, 0) for s in waiting):
            return
        log.info(", ".join(f"{workflow.name}/{s}: {left.get(s, 0)} left" for s in waiting))


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
            f"{e.step_key}: {_root_cause(e.event_specific_data.error)}"  # type: ignore[union-attr]
            for e in result.all_events
            if e.is_step_failure and e.event_specific_data is not None
        ]
        raise RunFailed(
            f"run {result.run_id} of {names} failed: " + ("; ".join(failures) or "see the run log")
        )


def _root_cause(error: Any) -> str:
    """The first error under Dagster's wrappers: "Failure: …" or "ZeroDivisionError: …", not "Error occurred
    while executing op…"."""
    while error is not None and error.cls_name.startswith("Dagster") and error.cause is not None:
        error = error.cause
    return (
        (error.message if error is not None else "").replace("dagster._core.definitions.events.", "").strip()
    )
