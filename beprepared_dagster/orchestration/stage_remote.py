"""Remote stages in the executor (API captioners, LLM text nodes): look every image up in the cache first,
and send requests only for the misses.

Order matters: the API key is read (a missing one fails the stage naming its variable) before any row is
written or any request sent; cache hits are written next; the misses then go out at the node's `parallel`
concurrency, and finished ones are stored in batches as they arrive (cache + stage rows, every 32 answers or
every second), so a stopped run loses the requests in flight and at most the last second's answers. A failure (refusal, rejection, retries exhausted, not sent) is stored as
a row flagged for retry and never cached. The run's requests, retries, failures, tokens and estimated cost go
into the stage's metadata.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from beprepared_dagster.nodes.base import Image, Outcome
from beprepared_dagster.orchestration.stage_model import _row
from beprepared_dagster.remote.client import Stats
from beprepared_dagster.remote.driver import Job, RunResult, run_jobs
from beprepared_dagster.remote.node import Plan
from beprepared_dagster.remote.settings import display_url
from beprepared_dagster.store import cache, stages
from beprepared_dagster.store.stages import KEPT, Row

if TYPE_CHECKING:
    from beprepared_dagster.orchestration.executor import StageExecutor, StageReport
    from beprepared_dagster.remote.node import RemoteNode
    from beprepared_dagster.workflow import Stage

READ_CHUNK = 4096


def run_remote_stage(executor: StageExecutor, stage: Stage, keys: list[str], report: StageReport) -> None:
    from beprepared_dagster.orchestration.executor import chunks

    node: RemoteNode = stage.node  # type: ignore[assignment]
    ctx = executor._context(stage)
    upstream = stage.inputs[0].name
    inputs: dict[str, list[Row]] = {}
    digests: dict[tuple[str, int], str] = {}
    local: dict[tuple[str, int], Outcome] = {}
    plans: dict[str, Plan] = {}
    hits: dict[str, Any] = {}
    for chunk in chunks(keys, READ_CHUNK):
        with executor.store.db.connect() as conn:
            rows = stages.read_rows(conn, executor.workflow.name, upstream, chunk)
            executor._check_complete(stage, upstream, chunk, rows)
        found: dict[str, Plan] = {}
        for row in (r for g in rows.values() for r in g if r.status == KEPT):
            plan = node.plan(Image(row.props), ctx)
            if isinstance(plan, Outcome):
                local[(row.image_id, row.seq)] = plan
                continue
            digest = _digest(plan.key)
            digests[(row.image_id, row.seq)] = digest
            found.setdefault(digest, plan)
        with executor.store.db.connect() as conn:
            hits.update(cache.lookup(conn, stage.fingerprint, sorted(found)))
        plans.update({d: p for d, p in found.items() if d not in hits})
        inputs.update(rows)
    misses = list(plans)
    settings = node.client_settings() if misses else None
    api_key = settings.api_key(f"stage {stage.name!r}") if settings else ""  # before anything is written
    report.cache_hits += sum(1 for d in digests.values() if d in hits)
    progress = executor.progress(stage, len(keys))
    waiting = set(misses)
    done = [k for k in keys if all(digests.get((k, r.seq)) not in waiting for r in inputs[k])]
    for chunk in chunks(done, READ_CHUNK):
        out = []
        for key in chunk:
            for r in inputs[key]:
                digest = digests.get((key, r.seq))
                outcome = Outcome.from_json(hits[digest]) if digest in hits else local.get((key, r.seq))
                out.append(_row(executor, stage, r, outcome))
        executor._write(stage, out, report, cache_values={})
        progress.advance(len(chunk))
    if misses:
        _send(executor, stage, node, settings, api_key, inputs, digests, local, plans, report, progress)
    progress.finish()


def _send(
    executor: StageExecutor,
    stage: Stage,
    node: RemoteNode,
    settings: Any,
    api_key: str,
    inputs: dict[str, list[Row]],
    digests: dict[tuple[str, int], str],
    local: dict[tuple[str, int], Outcome],
    plans: dict[str, Plan],
    report: StageReport,
    progress: Any,
) -> None:
    misses = list(plans)
    wanted = set(misses)
    feeds: dict[str, list[Row]] = {}
    for image_id, rows in inputs.items():
        for row in rows:
            if digests.get((image_id, row.seq)) in wanted:
                feeds.setdefault(digests[(image_id, row.seq)], []).append(row)
    jobs = [Job(i, plans[d].bodies) for i, d in enumerate(misses)]
    plans.clear()  # the jobs hold the bodies now
    servers = ", ".join(display_url(u) for u in settings.base_urls)
    executor.log.info(
        f"{stage.name}: sending {sum(len(j.bodies) for j in jobs)} request(s) for {len(jobs)} input(s) to "
        f"{servers} (model {node.model}, {settings.parallel} at once)"
    )
    ready: dict[str, Outcome] = {}

    def complete(key: str) -> bool:
        return all((key, r.seq) not in digests or digests[(key, r.seq)] in ready for r in inputs[key])

    def store_batch(results: list[tuple[int, list[Any]]]) -> None:
        fresh = {misses[i]: node.outcome(Image(feeds[misses[i]][0].props), value) for i, value in results}
        ready.update(fresh)
        # An image is written whole, once each of its rows has its outcome (Concat may give it several).
        images = sorted(k for k in {r.image_id for d in fresh for r in feeds[d]} if complete(k))
        rows = [
            _row(executor, stage, r, _outcome(k, r, digests, ready, local)) for k in images for r in inputs[k]
        ]
        executor._write(stage, rows, report, {d: o.to_json() for d, o in fresh.items() if o.cache})
        report.computed += len(fresh)
        report.fresh_images += len(images)
        progress.advance(len(images))

    result = RunResult(Stats())
    try:
        run_jobs(jobs, settings, api_key, executor.log, store_batch, result=result)
    finally:
        report.extra.update(api_metadata(node, result))
        executor.log.info(api_line(stage.name, report.extra))


def _outcome(
    key: str, row: Row, digests: dict[tuple[str, int], str], ready: dict[str, Outcome], local: dict
) -> Outcome | None:
    digest = digests.get((key, row.seq))
    return ready[digest] if digest is not None else local.get((key, row.seq))


def _digest(key: Any) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def api_metadata(node: RemoteNode, result: RunResult) -> dict[str, Any]:
    """The run's API figures for the materialization's metadata (no URL credentials, never a key)."""
    s = result.stats
    meta: dict[str, Any] = {
        "model": node.model,
        "requests": s.requests,
        "retries": s.retries,
        "failures": s.failures,
        "refusals": s.refusals,
        "rejected_by_server": s.rejected,
        "not_sent": s.not_sent,
        "truncated": s.truncated,
        "prompt_tokens": s.prompt_tokens,
        "completion_tokens": s.completion_tokens,
        "servers": result.servers,
    }
    cost = node.estimated_cost(s.prompt_tokens, s.completion_tokens)
    if cost is not None:
        meta["estimated_cost_usd"] = round(cost, 6)
    return meta


def api_line(stage: str, meta: dict[str, Any]) -> str:
    """The run log's line for a remote stage's requests."""
    line = (
        f"{stage}: {meta['requests']} request(s), {meta['retries']} retries, {meta['failures']} failed, "
        f"{meta['refusals']} refused, {meta['rejected_by_server']} rejected by the server"
    )
    if meta["not_sent"]:
        line += f", {meta['not_sent']} not sent (max_requests)"
    line += f"; tokens: {meta['prompt_tokens']} prompt + {meta['completion_tokens']} completion"
    if "estimated_cost_usd" in meta:
        line += f", about ${meta['estimated_cost_usd']:.4f}"
    return line
