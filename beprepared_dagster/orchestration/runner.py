"""Headless runs (`workspace.run()`, `python flow.py`, `beprepared run`): in-process Dagster on the
workspace's persistent instance, so the history is the same one `dagster dev` shows later.

Only what is stale runs (see planning.py): grouped into contiguous insertion-order ranges, one run per (range,
stage selection), re-planned after each round until nothing is stale. At a human stage the run waits for
labels (serving the labeling app) or, with `wait=False`, stops there.

One writer per workspace: the runner holds the workspace's lock (store/lock.py) from discovery until nothing
is stale, and again for Save; while it waits for labels it lets go, so `dagster dev`'s label runs can work.
A second run on the same workspace waits, says for whom, and then finds the first one's results cached.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from beprepared_dagster import console
from beprepared_dagster.errors import RunFailed
from beprepared_dagster.labeling.urls import tab_url
from beprepared_dagster.nodes.base import HumanNode, MergeNode, SetNode, SinkNode
from beprepared_dagster.nodes.save import SaveNode
from beprepared_dagster.orchestration import inprocess
from beprepared_dagster.orchestration.assets import asset_key
from beprepared_dagster.orchestration.defs import build_definitions
from beprepared_dagster.orchestration.discovery import PreScan, discover, load_nodes
from beprepared_dagster.orchestration.executor import describe
from beprepared_dagster.orchestration.export import export_is_current
from beprepared_dagster.orchestration.gcpolicy import (
    few_full_collections,
    no_collection,
    no_collection_at_exit,
)
from beprepared_dagster.orchestration.partitions import partitions_name, range_tags
from beprepared_dagster.orchestration.planning import PlannedRun, plan
from beprepared_dagster.orchestration.writer import listening, waiting_message
from beprepared_dagster.store import order
from beprepared_dagster.store.lock import current_command, workspace_lock
from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster.workflow import Workflow

log = logging.getLogger("beprepared")

Progress = Callable[[int, int, str], None]


@dataclass
class RunSummary:
    workflow: str
    new_images: int = 0
    images: int = 0
    runs: list[PlannedRun] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    waiting: dict[str, int] = field(default_factory=dict)  # human stage → images left unlabeled (no-wait)
    saved: bool = False
    done: dict[str, int] = field(default_factory=dict)  # stage → images stored by this run's stages


class Stopped(KeyboardInterrupt):
    """Ctrl-C: the run stopped; every batch stored before it is kept. `str()` is the line to show."""

    def __init__(self, done: dict[str, int]) -> None:
        self.done = {stage: n for stage, n in done.items() if n}
        total = sum(self.done.values())
        detail = f" ({', '.join(f'{s} {n}' for s, n in self.done.items())})" if total else ""
        super().__init__(f"stopped; {total} images done are kept{detail}, re-run to continue")


def run_workflow(
    workflow: Workflow,
    *,
    save: bool = True,
    wait: bool = True,
    log_level: str | None = None,
    progress: Progress | None = None,
    poll_seconds: float = 2.0,
    prescan: PreScan | None = None,
) -> RunSummary:
    """Discover new images, materialize every stale stage range, wait for labels at human stages (or stop
    there when `wait` is False), then Save. Raises RunFailed on failure, Stopped on Ctrl-C.

    `progress(done, total, label)` counts images of the stage at work (label: its name and the run's place).
    `log_level` is the threshold of Dagster's lines on the console (default INFO; ERROR from a script).
    `prescan`: new files already being hashed (`discovery.PreScan`), used as hints by discovery.

    Called from a script's top level (`python flow.py`), the run behaves like `beprepared run`: a progress
    bar, the labeling tabs, a summary, and a failure or Ctrl-C ends the script with one line (exit status 1
    or 130)."""
    if progress is None and console.called_as_script():
        no_collection_at_exit()  # the script ends with its run
        with console.script_session(workflow.name) as bar:
            summary = _Run(workflow, log_level or "ERROR", bar.update, poll_seconds, prescan).run(save, wait)
        console.print_summary(workflow, summary)
        return summary
    return _Run(workflow, log_level or "INFO", progress, poll_seconds, prescan).run(save, wait)


def check_load_folders(workflow: Workflow) -> None:
    """Fail with one line naming the folder when a Load folder is missing or not a folder."""
    for node in load_nodes(workflow):
        try:
            node.check_folder()
        except OSError as exc:
            raise RunFailed(f"workflow {workflow.name!r}: {exc}") from None


class _Run:
    """One headless run of a workflow: its store, instance, progress and summary."""

    def __init__(
        self,
        workflow: Workflow,
        log_level: str,
        progress: Progress | None,
        poll: float,
        prescan: PreScan | None = None,
    ) -> None:
        self.workflow, self.log_level, self.progress, self.poll = workflow, log_level, progress, poll
        self.prescan = prescan
        self.summary = RunSummary(workflow.name)
        self.store = WorkspaceStore(workflow.workspace_dir)
        self.label = ""
        self.keys: list[str] = []  # the workflow's images
        self.discovered = False
        self._seen: dict[str, int] = {}  # "stage@run" → images it reported, to count each image once
        self._exported = False  # the last run materialized the Save stages too

    def run(self, save: bool, wait: bool) -> RunSummary:
        check_load_folders(self.workflow)
        try:
            with listening(self._stage_progress), few_full_collections():
                return self._run(save, wait)
        except KeyboardInterrupt:
            raise Stopped(self.summary.done) from None

    def _run(self, save: bool, wait: bool) -> RunSummary:
        with no_collection():  # Dagster's storage modules load here, and the definitions are built once
            self.instance = inprocess.headless_instance(self.store)
            self.assets = list(build_definitions([self.workflow]).assets or [])
        while True:
            with self._lock():  # let go only while waiting for labels
                if not self.discovered:
                    self.keys, self.discovered = self._discover(), True
                waiting = self._work(save)
                if not waiting:
                    self._save(save)
                    break
            if not wait:
                return self._stop_at_labels(waiting)
            self._wait_for_labels(waiting)
        self._report(1, 1, "done")
        return self.summary

    def _save(self, save: bool) -> None:
        stages = self._sinks()
        if not (save and stages):
            return
        if self._exported:  # the last stage run exported as it ended
            self.summary.saved = True
            return
        if not self.summary.runs and all(
            isinstance(s.node, SaveNode) and export_is_current(self.store, self.workflow, s) for s in stages
        ):  # nothing ran and every export already holds it: its last materialization still stands
            log.info(f"{self.workflow.name}: nothing changed; the export(s) are current")
            self.summary.saved = True
            return
        self._report(0, 1, "save")
        self._materialize(
            [asset_key(self.workflow, s) for s in stages], {"beprepared/workflow": self.workflow.name}
        )
        self.summary.saved = True

    def _sinks(self) -> list:
        return [s for s in self.workflow.stages if isinstance(s.node, SinkNode)]

    def _lock(self) -> Any:
        def say(holder: Any) -> None:
            log.warning(waiting_message(self.store, holder))

        return workspace_lock(self.store.root, current_command(), on_wait=say)

    def _work(self, save: bool) -> dict[str, int]:
        """Run planned ranges until nothing is stale; return the images waiting per human stage.

        In a workflow without human stages the round's last run takes the Save stages too: the export is
        made in the same Dagster run (one run's start, end and bookkeeping fewer). Should planning find more
        stale ranges afterwards, their last run exports again. (With human stages, images may come to wait
        for a label during the round; the Save then runs on its own once they are labeled.)

        A chain of per-image stages settles in one round: planning already takes every stage below a stale
        image, and nothing else writes meanwhile (the workspace lock). Only a set-level, merge or human
        stage can leave work that shows after its run (a changed decision, a label), so only a workflow with
        one plans again; the others skip that check (a plan reads every stage's rows: ~0.08 s at 5,000)."""
        nodes = [s.node for s in self.workflow.stages]
        unattended = save and not any(isinstance(n, HumanNode) for n in nodes)
        settles_in_one_round = not any(isinstance(n, SetNode | MergeNode | HumanNode) for n in nodes)
        rounds = 0
        while True:
            if rounds and settles_in_one_round:
                return {}
            planned = plan(self.store, self.workflow, self.keys, retry_before=self.started)
            if not planned.runs:
                return {stage: n for stage, n in planned.waiting.items() if n}
            rounds += 1
            if rounds > len(self.workflow.stages) + 3:
                raise RunFailed(
                    f"workflow {self.workflow.name!r}: planning did not settle after {rounds - 1} rounds"
                )
            for i, run in enumerate(planned.runs, 1):
                self.label = f"run {i}/{len(planned.runs)}" if len(planned.runs) > 1 else ""
                self._report(0, run.images, run.stages[0])
                selection = [asset_key(self.workflow, self.workflow.stage(s)) for s in run.stages]
                export = unattended and i == len(planned.runs)
                if export:
                    selection += [asset_key(self.workflow, s) for s in self._sinks()]
                tags = {**range_tags(run.first, run.last), "beprepared/workflow": self.workflow.name}
                self._exported = False
                self._materialize(selection, tags)
                self._exported = bool(export and self._sinks())
                self.summary.runs.append(run)

    def _stage_progress(self, stage: str, done: int, total: int) -> None:
        """The executor's listener: images of `stage` stored so far in this run."""
        key = f"{stage}@{len(self.summary.run_ids)}"
        self.summary.done[stage] = self.summary.done.get(stage, 0) + done - self._seen.get(key, 0)
        self._seen[key] = done
        self._report(done, total, stage)

    def _report(self, done: int, total: int, what: str) -> None:
        if self.progress:
            self.progress(done, total, f"{what} · {self.label}" if self.label and what != "done" else what)

    def _discover(self) -> list[str]:
        workflow, name = self.workflow, partitions_name(self.workflow)
        keys: list[str] = []

        def register(conn: Any, new_keys: list[str]) -> None:
            """In the transaction that writes the file index: the new partitions (a failure here leaves the
            index as it was, so the next run finds the files new again) and the images' order."""
            if new_keys:
                self.instance.add_dynamic_partitions(name, new_keys)
            keys.extend(self.instance.get_dynamic_partitions(name))
            order.append_order(conn, workflow.name, keys)

        try:
            existing = set(self.instance.get_dynamic_partitions(name))
            found = discover(
                self.store, workflow, existing, log, self.prescan, first=self._started, last=register
            )
            self.prescan = None  # hints for this discovery only
        except OSError as exc:
            raise RunFailed(f"workflow {workflow.name!r}: {exc}") from exc
        self.summary.new_images = len(found.new_keys)
        self.summary.images = len(keys)
        log.info(f"{workflow.name}: {len(keys)} images ({self.summary.new_images} new)")
        return keys

    def _started(self, conn: Any) -> None:
        """In discovery's first transaction: the run's start (outcomes flagged for retry before it are
        computed again) and the stages' fingerprint descriptions."""
        self.started = conn.execute("SELECT current_timestamp::TIMESTAMP").fetchone()[0]
        describe(conn, self.store.db, [s for s in self.workflow.stages if not isinstance(s.node, SinkNode)])

    def _stop_at_labels(self, waiting: dict[str, int]) -> RunSummary:
        self.summary.waiting = waiting
        name = self.workflow.name
        for stage, n in waiting.items():
            log.info(f"{name}/{stage}: {n} image(s) wait for a label at {tab_url(name, stage)}")
        log.info(f"{name}: stopped at the human stage(s) (no-wait); Save was not run")
        return self.summary

    def _wait_for_labels(self, waiting: dict[str, int]) -> None:
        """Serve the labeling app (unless one already serves this workspace), print the tabs, and return once
        every image waiting at those stages is labeled (the stage is complete, as in the original)."""
        from beprepared_dagster.labeling.launcher import ensure_serving

        ensure_serving([self.workflow])
        name, journal = self.workflow.name, self.store.journal
        for stage, n in waiting.items():
            log.info(f"{name}/{stage}: {n} image(s) to label at {tab_url(name, stage)}")
        self._report(0, sum(waiting.values()), "waiting for labels")
        journal_at = journal.max_id()
        while True:
            time.sleep(self.poll)
            if journal.max_id() == journal_at:
                continue
            journal_at = journal.max_id()
            left = {s: n for s, n in plan(self.store, self.workflow, self.keys).waiting.items() if n}
            if not any(left.get(s, 0) for s in waiting):
                return
            log.info(", ".join(f"{name}/{s}: {left.get(s, 0)} left" for s in waiting))

    def _materialize(self, selection: list, tags: dict) -> None:
        names = ", ".join(k.to_user_string() for k in selection)
        failures = self.log_level.upper() in ("DEBUG", "INFO")
        try:
            result = inprocess.execute(self.assets, selection, self.instance, tags, self.log_level, failures)
        except Exception as exc:  # a definition or launch error, before any step ran
            raise RunFailed(f"run of {names} could not start: {exc}") from exc
        flush = getattr(self.instance.event_log_storage, "flush", None)
        if flush is not None:  # the run's events are written in the background: all stored before we go on
            flush()
        self.summary.run_ids.append(result.run_id)
        if result.success:
            return
        failures_text = [
            f"{e.step_key}: {inprocess.root_cause(e.event_specific_data.error)}"  # type: ignore[union-attr]
            for e in result.all_events
            if e.is_step_failure and e.event_specific_data is not None
        ]
        raise RunFailed(
            f"run {result.run_id} of {names} failed: " + ("; ".join(failures_text) or "see the run log")
        )
