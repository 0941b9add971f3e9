"""Many requests at `parallel` concurrency: an event loop on a thread of its own sends them, and the caller's
thread receives finished jobs in batches (every `flush_every` jobs, 32 by default, or every `flush_seconds`),
so the stage stores results as they arrive: a stopped run loses the requests in flight and at most the last
second's answers. (A write per answer would cost a DuckDB transaction each: `bench/bench_api_captioning.py`.)"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from beprepared_dagster.errors import BadImage
from beprepared_dagster.remote.client import ChatClient, Failure, Reply, Stats
from beprepared_dagster.remote.routing import Server, ServerPool
from beprepared_dagster.remote.settings import ClientSettings

Result = Reply | Failure
Body = dict[str, Any] | Callable[[], dict[str, Any]]


@dataclass
class Job:
    """One image's requests: request bodies, or functions building them (e.g. encoding the image), called
    on a worker thread just before sending."""

    index: int
    bodies: Sequence[Body]


@dataclass
class RunResult:
    stats: Stats
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)


def run_jobs(
    jobs: list[Job],
    settings: ClientSettings,
    api_key: str,
    log: Any,
    on_results: Callable[[list[tuple[int, list[Result]]]], None],
    result: RunResult | None = None,
    flush_every: int | None = None,
    flush_seconds: float = 1.0,
) -> RunResult:
    """Send every job's requests; `on_results([(job index, results aligned with its bodies), …])` runs on
    the calling thread. Raises what stops the stage (`client.Fatal`) after handing over what finished;
    `result` (counts so far) is filled in either way."""
    flush_every = flush_every or max(32, 2 * settings.parallel)
    out: queue.Queue[tuple[str, Any]] = queue.Queue()
    stop = threading.Event()
    result = result if result is not None else RunResult(Stats())

    def thread_main() -> None:
        try:
            asyncio.run(_send_all(jobs, settings, api_key, log, out, stop, result))
        except BaseException as exc:  # handed to the caller's thread
            out.put(("error", exc))
        finally:
            out.put(("end", None))

    thread = threading.Thread(target=thread_main, name="beprepared-remote", daemon=True)
    thread.start()
    pending: list[tuple[int, list[Result]]] = []
    error: BaseException | None = None
    last = time.monotonic()
    try:
        while True:
            try:
                kind, value = out.get(timeout=0.2)
            except queue.Empty:
                kind, value = "", None
            if kind == "result":
                pending.append(value)
            elif kind == "error":
                error = value
            elif kind == "end":
                break
            if pending and (len(pending) >= flush_every or time.monotonic() - last >= flush_seconds):
                on_results(pending)
                pending, last = [], time.monotonic()
        if pending:
            on_results(pending)
    except KeyboardInterrupt:
        stop.set()  # send nothing more, keep what arrived
        if pending:
            on_results(pending)
        thread.join(timeout=2)
        raise
    except BaseException:
        stop.set()  # a failed write: send nothing more
        thread.join(timeout=2)
        raise
    thread.join()
    if error is not None:
        raise _first(error)
    return result


def _first(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


async def _send_all(
    jobs: list[Job],
    settings: ClientSettings,
    api_key: str,
    log: Any,
    out: queue.Queue,
    stop: threading.Event,
    result: RunResult,
) -> None:
    from openai import AsyncOpenAI

    servers = [
        Server(url, AsyncOpenAI(base_url=url, api_key=api_key, max_retries=0, timeout=settings.timeout))
        for url in settings.base_urls
    ]
    pool = ServerPool(servers, settings.rest_after, settings.rest_seconds, log)
    client = ChatClient(settings, pool, result.stats, log)
    slots = {job.index: [None] * len(job.bodies) for job in jobs}
    left = {job.index: len(job.bodies) for job in jobs}
    work = iter([(job, k) for job in jobs for k in range(len(job.bodies))])
    warned: list[bool] = []

    async def worker() -> None:
        for job, k in work:
            if stop.is_set():
                return
            slots[job.index][k] = await _one(client, job.bodies[k], warned, log)
            left[job.index] -= 1
            if not left[job.index]:
                out.put(("result", (job.index, slots.pop(job.index))))

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(settings.parallel, max(1, sum(left.values())))):
                group.create_task(worker())
    finally:
        result.servers = pool.summary()
        for server in servers:
            await server.client.close()


async def _one(client: ChatClient, body: Body, warned: list[bool], log: Any) -> Result:
    if not client.budget_left():
        if not warned:
            warned.append(True)
            log.warning(
                f"max_requests={client.settings.max_requests} reached: the remaining images are not sent "
                "this run (they are retried on the next one)"
            )
        return client.not_sent()
    if callable(body):
        try:
            body = await asyncio.to_thread(body)
        except BadImage as exc:
            return Failure(f"bad image: {exc}", "bad_image")
    return await client.complete(body)
