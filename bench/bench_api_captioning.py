"""Benchmark: API captioning against a local fake Chat Completions server with a fixed answer delay.

    .venv/bin/python bench/bench_api_captioning.py [--images 160] [--delay 0.05] [--parallel 1,8,32]

For each `parallel`, the same images are captioned three ways, each sending one request per image to the fake
server (its own process, so its CPU time is not counted):

- plain loop: `asyncio` + a semaphore + `AsyncOpenAI.chat.completions.create` (the same SDK), bodies built
  from the file bytes beforehand; nothing stored, no retries, no routing.
- client: `remote.driver.run_jobs` (what the stage uses: image → data URL on worker threads, routing, retry
  bookkeeping, refusal checks, results handed to the caller's thread in batches); nothing stored.
- stage: `StageExecutor.run` of an `OpenAICaption` stage on a fresh workspace (DuckDB reads, cache lookups,
  per-batch writes of rows and cache), after an untimed Load; then the same stage again, every image cached
  (the stage's fixed cost: no request is sent).

Figures: captions/s (images / wall seconds; the bound is parallel / delay) and CPU ms per request of this
process (`time.process_time`). The difference to the plain loop is the client's own overhead.
Prints figures; it is not a test. Results are appended to bench/RESULTS-api.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
log = logging.getLogger("bench")
MODEL = "bench-vlm"


def start_server(delay: float) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "beprepared_dagster_tests.remote.fake_server", "--delay", str(delay)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    url = process.stdout.readline().strip()  # type: ignore[union-attr]
    if not url.startswith("http"):
        process.kill()
        raise SystemExit("the fake server did not start")
    return process, url


def make_images(folder: Path, count: int) -> list[Path]:
    from beprepared_dagster_tests.conftest import make_image

    return [make_image(folder / f"img_{i:04d}.jpg", 512, 384, seed=i) for i in range(count)]


def timed(fn, *args) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def plain_loop(url: str, paths: list[Path], parallel: int) -> None:
    from openai import AsyncOpenAI

    from beprepared_dagster.remote.images import data_url

    bodies = [
        {
            "model": MODEL,
            "max_tokens": 300,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Describe."},
                        {"type": "image_url", "image_url": {"url": data_url(p.read_bytes(), 1024)}},
                    ],
                }
            ],
        }
        for p in paths
    ]

    async def go() -> None:
        client = AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
        gate = asyncio.Semaphore(parallel)

        async def one(body: dict) -> str:
            async with gate:
                answer = await client.chat.completions.create(**body)
                return answer.choices[0].message.content or ""

        texts = await asyncio.gather(*(one(b) for b in bodies))
        assert all(texts)
        await client.close()

    asyncio.run(go())


def client_only(url: str, paths: list[Path], parallel: int) -> None:
    from beprepared_dagster import OpenAICaption
    from beprepared_dagster.remote.driver import Job, run_jobs

    node = OpenAICaption(model=MODEL, base_url=url, parallel=parallel)
    jobs = [Job(i, [lambda p=p: node.request(p.read_bytes())]) for i, p in enumerate(paths)]
    got: list = []
    run_jobs(jobs, node.client_settings(), "x", log, got.extend)
    assert len(got) == len(paths)


def stage(url: str, folder: Path, parallel: int) -> tuple[float, float, float, float]:
    from beprepared_dagster import Load, OpenAICaption, Workflow
    from beprepared_dagster.orchestration.discovery import discover
    from beprepared_dagster.orchestration.executor import StageExecutor
    from beprepared_dagster.store import WorkspaceStore

    ws = Path(tempfile.mkdtemp(prefix="bench-api-ws-"))
    workflow = Workflow(
        "bench", Load(folder) >> OpenAICaption(model=MODEL, base_url=url, parallel=parallel), workspace=ws
    )
    store = WorkspaceStore(ws)
    keys = discover(store, workflow, set(), log).new_keys
    executor = StageExecutor(store, workflow, log)
    executor.run(workflow.stages[0], keys)
    reports = []
    wall, cpu = timed(lambda: reports.append(executor.run(workflow.stages[1], keys)))
    assert reports[0].extra["requests"] == len(keys) and reports[0].kept == len(keys)
    again = timed(lambda: reports.append(executor.run(workflow.stages[1], keys)))
    assert reports[1].cache_hits == len(keys) and not reports[1].extra
    return wall, cpu, *again


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=160)
    parser.add_argument("--delay", type=float, default=0.05, help="the fake server's answer delay (s)")
    parser.add_argument("--parallel", default="1,8,32")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS-api.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import openai

    server, url = start_server(args.delay)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "photos"
            paths = make_images(folder, args.images)
            plain_loop(url, paths[:4], 2)  # warm: imports, first connection
            rows = []
            for parallel in [int(p) for p in args.parallel.split(",")]:
                staged = stage(url, folder, parallel)
                figures = [
                    ("plain loop (asyncio + AsyncOpenAI)", *timed(plain_loop, url, paths, parallel)),
                    ("client (remote.driver.run_jobs)", *timed(client_only, url, paths, parallel)),
                    ("stage (OpenAICaption via StageExecutor)", *staged[:2]),
                    ("same stage again, every image cached (no request)", *staged[2:]),
                ]
                base_cpu = figures[0][2]
                for name, wall, cpu in figures:
                    extra = (
                        "" if name.startswith("plain") else f" ({1000 * (cpu - base_cpu) / len(paths):+.2f})"
                    )
                    rows.append(
                        f"| {parallel} | {name} | {wall:.2f} | {len(paths) / wall:.1f} | "
                        f"{1000 * cpu / len(paths):.2f}{extra} |"
                    )
                print("\n".join(rows[-4:]), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)
    lines = [
        f"{args.images} images 512x384 JPEG (sent as they are), fake server answering after {1000 * args.delay:.0f} ms "
        f"in its own process, openai {openai.__version__}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores",
        "",
        "| parallel | path | seconds | captions/s | CPU ms per request (vs plain loop) |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Bound at a {1000 * args.delay:.0f} ms answer: parallel / delay captions/s "
        f"({', '.join(f'{int(p) / args.delay:.0f}' for p in args.parallel.split(','))}).",
    ]
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    report = "\n".join([f"## {stamp} — {platform.node()}", "", *lines, ""])
    print(report)
    if not args.results.exists():
        args.results.write_text(
            "# API captioning benchmark results\n\nAppended by `bench/bench_api_captioning.py`; newest last.\n\n"
        )
    with args.results.open("a") as out:
        out.write(report + "\n")


if __name__ == "__main__":
    main()
