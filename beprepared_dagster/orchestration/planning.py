"""What to run next, from DuckDB and the label journal alone (no Dagster state), so the headless runner and the
sensors make the same decisions.

Per stage, an image is stale when its row is missing, was made with another fingerprint, is older than an
upstream row, or failed. At a human stage it is also stale when its label changed since its row was written
(or it waits and has become decidable); it is *blocked* while a person has not labeled it yet, or while the
stage above it still has to run. Blocked images are left out of that stage and everything below it; the
next plan (after the run, or after labeling) picks them up. Stale images are grouped into contiguous
insertion-order ranges per stage selection: one run each.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from beprepared_dagster.nodes.base import HumanNode, SinkNode
from beprepared_dagster.orchestration.partitions import contiguous_ranges
from beprepared_dagster.orchestration.stage_human import current_labels, is_ready
from beprepared_dagster.store import human, stages
from beprepared_dagster.store.admin import CLEARED
from beprepared_dagster.store.stages import KEPT, PENDING
from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster.workflow import Stage, Workflow


@dataclass
class PlannedRun:
    stages: list[str]
    first: str
    last: str
    images: int = 0
    key: str = ""  # identifies this run's work, for Dagster's run_key de-duplication


@dataclass
class Plan:
    runs: list[PlannedRun] = field(default_factory=list)
    waiting: dict[str, int] = field(default_factory=dict)  # human stage → images waiting for a label
    # Changes whenever stored state does (a run wrote rows, a label arrived): part of every run key, so the
    # same work requested again after a change is not mistaken for a duplicate, and unchanged work is.
    token: str = ""


def merged(workflow: Workflow, runs: list[PlannedRun], all_keys: list[str], token: str) -> list[PlannedRun]:
    """`runs` as one run over the span they cover (HumanRank: one comparison moves scores all over the
    dataset, and the images still short of comparisons in between would otherwise split it into many runs;
    re-running those writes the same "waiting" rows again)."""
    if len(runs) < 2:
        return runs
    position = {k: i for i, k in enumerate(all_keys)}
    first = min((r.first for r in runs), key=position.__getitem__)
    last = max((r.last for r in runs), key=position.__getitem__)
    chosen = {s for r in runs for s in r.stages}
    selection = [s.name for s in partitioned_stages(workflow) if s.name in chosen]
    key = hashlib.sha256("|".join([token, *selection, first, last]).encode()).hexdigest()[:24]
    return [PlannedRun(selection, first, last, position[last] - position[first] + 1, key)]


def partitioned_stages(workflow: Workflow) -> list[Stage]:
    return [s for s in workflow.stages if not isinstance(s.node, SinkNode)]


def owner(workflow: Workflow, stage_name: str) -> str | None:
    """The human stage whose sensor launches runs starting at this stage (the nearest human stage at or above
    it), or None for the automated stages above every human stage (the discovery sensor's)."""
    stage = workflow.stage(stage_name)
    seen: list[Stage] = []
    frontier = [stage]
    while frontier:
        current = frontier.pop()
        if isinstance(current.node, HumanNode):
            seen.append(current)
            continue
        frontier.extend(current.inputs)
    if not seen:
        return None
    order = [s.name for s in workflow.stages]
    return max(seen, key=lambda s: order.index(s.name)).name


def plan(store: WorkspaceStore, workflow: Workflow, all_keys: list[str], retry_before: Any = None) -> Plan:
    """What to run next. `retry_before`: retry outcomes flagged for retry before this time (a headless run
    passes its start time; the sensors pass nothing, so a failing image is not retried every tick)."""
    result = Plan()
    stale: dict[str, set[str]] = {}
    blocked: dict[str, set[str]] = {}
    passive: dict[str, set[str]] = {}
    with store.db.connect() as conn:
        # Read before anything it stands for: a label or row arriving while this plans makes the next token
        # differ, so the sensors plan again instead of taking it as already planned.
        result.token = _token(conn, store, workflow)
        settled: dict[str, set[str]] = {}  # blocked at a stage, but with an up-to-date row there
        partitioned = partitioned_stages(workflow)
        own_stale = stages.stale_by_stage(
            conn,
            workflow.name,
            [(s.name, s.fingerprint, [i.name for i in s.inputs]) for s in partitioned],
            all_keys,
            retry_before,
        )
        for stage in partitioned:
            inputs = [i.name for i in stage.inputs]
            own = own_stale[stage.name]
            upstream_stale = set().union(*(stale.get(i, set()) for i in inputs))
            held = set().union(*(blocked.get(i, set()) for i in inputs))
            # An image waiting above whose "waiting" row there is settled must still reach this stage when
            # its row here is outdated (an undo or re-label above turned an exported image into "waiting").
            held -= {
                k
                for k in held & own
                if k not in upstream_stale
                and all(k not in blocked.get(i, ()) or k in settled.get(i, ()) for i in inputs)
            }
            own |= upstream_stale
            if isinstance(stage.node, HumanNode):
                state = _human(conn, store, workflow, stage, all_keys, own, upstream_stale)
                own |= state.extra
                held |= state.held
                passive[stage.name] = state.passive
                result.waiting[stage.name] = state.waiting
            stale[stage.name] = own - held
            blocked[stage.name] = held
            settled[stage.name] = held - own
    # While people still label, images that need no label at a human stage (rejected above it) only ride
    # along with labeled ones there, instead of each becoming a run of its own. Per stage: an image passive
    # at a lower human stage (its rows there are outdated but not kept) may be labeled at this one.
    drivers = None if not any(result.waiting.values()) else passive
    result.runs = _group(workflow, stale, blocked, all_keys, result.token, drivers)
    return result


def state_token(store: WorkspaceStore, workflow: Workflow) -> str:
    """Cheap to compute; equal tokens mean an equal plan (the sensors skip planning on an unchanged token)."""
    with store.db.connect() as conn:
        return _token(conn, store, workflow)


def _token(conn: Any, store: WorkspaceStore, workflow: Workflow) -> str:
    # `db clear` re-marks rows without touching their timestamps: count those too.
    written, cleared = conn.execute(
        "SELECT max(updated_at), count(*) FILTER (WHERE fingerprint = ?) FROM stage_rows WHERE workflow = ?",
        [CLEARED, workflow.name],
    ).fetchone()
    fingerprints = hashlib.sha256("|".join(s.fingerprint for s in workflow.stages).encode()).hexdigest()[:12]
    return f"{written}|{cleared}|{store.journal.max_id()}|{fingerprints}"


@dataclass
class _HumanState:
    extra: set[str] = field(default_factory=set)  # stale because of a label change
    held: set[str] = field(default_factory=set)  # blocked: no label yet, or the stage above must run first
    passive: set[str] = field(default_factory=set)  # decidable here without a label (not kept above)
    waiting: int = 0  # kept above and not labeled


def _human(
    conn: Any,
    store: WorkspaceStore,
    workflow: Workflow,
    stage: Stage,
    all_keys: list[str],
    own: set[str],
    upstream_stale: set[str],
) -> _HumanState:
    node: HumanNode = stage.node  # type: ignore[assignment]
    upstream = stages.read_rows(conn, workflow.name, stage.inputs[0].name)
    labels = current_labels(node, store.journal)
    applied = human.applied_ids(conn, workflow.name, stage.name)
    pending, kept_here = _own_status(conn, workflow.name, stage.name)
    state = _HumanState()
    for key in all_keys:
        rows = upstream.get(key)
        if rows is None or key in upstream_stale:
            state.held.add(key)  # the stage above has to run first
            continue
        if all(r.status != KEPT for r in rows):
            # One this stage kept (exported below) must not wait to ride along: it would stay exported.
            if key not in kept_here:
                state.passive.add(key)
            continue
        label = labels.get(key)
        value = label.value if label else None
        changed = key in applied and applied[key] != (label.id if label else 0)
        if not is_ready(node, rows, value) and getattr(node, "decides_unlabeled", False):
            # A smart stage decides unlabeled images itself (its model, or "waiting"): run it where its row
            # is missing or outdated, wait where its row says so, leave the model's decisions alone.
            if changed or key in own or key not in applied:
                state.extra.add(key)
            elif pending.get(key, False):
                state.waiting += 1
                state.held.add(key)
        elif not is_ready(node, rows, value):
            state.waiting += 1
            # A label undone (or a version bump) must still turn an exported image into "waiting".
            if (changed or key in own) and key in applied and not pending.get(key, False):
                state.extra.add(key)
            else:
                state.held.add(key)
        elif changed or pending.get(key, False):
            state.extra.add(key)
    return state


def _own_status(conn: Any, workflow: str, stage: str) -> tuple[dict[str, bool], set[str]]:
    """Per image of the stage: whether all its rows are pending; and the images with a kept row."""
    rows = conn.execute(
        "SELECT image_id, bool_and(status = ?), bool_or(status = ?) FROM stage_rows "
        "WHERE workflow = ? AND stage = ? GROUP BY image_id",
        [PENDING, KEPT, workflow, stage],
    ).fetchall()
    return {r[0]: r[1] for r in rows}, {r[0] for r in rows if r[2]}


def _group(
    workflow: Workflow,
    stale: dict[str, set[str]],
    blocked: dict[str, set[str]],
    all_keys: list[str],
    token: str,
    passive: dict[str, set[str]] | None,
) -> list[PlannedRun]:
    """Contiguous ranges per stage selection. A range may bridge over images that are up to date everywhere
    (re-running them is a cache hit that changes nothing) to save runs; an image still waiting breaks it."""
    names = [s.name for s in partitioned_stages(workflow)]
    anything = set().union(*stale.values()) if stale else set()
    done = set(all_keys) - anything - set().union(*blocked.values())
    groups: dict[tuple[str, ...], set[str]] = {}
    for key in anything:
        selection = tuple(n for n in names if key in stale[n])
        groups.setdefault(selection, set()).add(key)
    fingerprints = {s.name: s.fingerprint for s in workflow.stages}
    position = {k: i for i, k in enumerate(all_keys)}
    runs = []
    for selection, keys in sorted(groups.items()):
        riders = passive.get(selection[0]) if passive is not None else None
        for first, last in contiguous_ranges(all_keys, keys | done):
            members = [k for k in all_keys[position[first] : position[last] + 1] if k in keys]
            if not members or (riders is not None and all(k in riders for k in members)):
                continue
            first, last = members[0], members[-1]
            signature = "|".join([token, *(f"{n}:{fingerprints[n]}" for n in selection), first, last])
            size = position[last] - position[first] + 1
            runs.append(
                PlannedRun(
                    list(selection), first, last, size, hashlib.sha256(signature.encode()).hexdigest()[:24]
                )
            )
    return runs
