"""Benchmark: under `dagster dev`, how long from new files landing in a Load folder to their export on disk.

    .venv/bin/python bench/bench_watch.py [--images 5000] [--rounds 3] [--new 10] [--workdir DIR]
                                          [--results FILE]

The workflow of bench_ingest (`Load >> FilterBySize(min_edge=256) >> FilterByAspectRatio(0.3, 3) >>
SetCaption("ohwx") >> Save`) is ingested once headless on N generated JPEGs; then a real `dagster dev` serves
it with its defaults (discovery sensor ticking every 2 s, file-system events through `watchdog`). Each round
copies `--new` new JPEGs into the folder and waits until every one the filters keep is in the export folder
with its caption. Printed per round: the latency (copy started → last file exported) and its parts from the
Dagster run the sensor launched: files landed → run created (quiet period, sensor tick, scan), created →
started (queue, run worker start-up), started → ended (stages and Save in one run).

Appends the report to bench/RESULTS-watch.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_ingest import make_images  # noqa: E402

from beprepared_dagster_tests.e2e.dagster_dev import (  # noqa: E402
    WORKSPACE_QUERY,
    DagsterDev,
    free_port,
    sha256_file,
    wait_for,
)

WORKFLOW = textwrap.dedent(
    """
    from beprepared_dagster import *
    with Workspace(r"{ws}", name="watch") as workspace:
        (Load(r"{src}") >> FilterBySize(min_edge=256) >> FilterByAspectRatio(min_aspect=0.3, max_aspect=3)
         >> SetCaption("ohwx") >> Save)
        workspace.run()
    """
)

RUNS_QUERY = """
query Runs($filter: RunsFilter) { runsOrError(filter: $filter) { __typename
    ... on Runs { results { runId status creationTime startTime endTime } }
    ... on PythonError { message } } }
"""
DISCOVERY = {"key": "beprepared/trigger", "value": "discovery"}


def kept(path: Path) -> bool:
    """Whether the benchmark's filters keep this image (min edge 256, aspect 0.3-3)."""
    from PIL import Image

    with Image.open(path) as image:
        w, h = image.size
    return min(w, h) >= 256 and 0.3 <= w / h <= 3


def discovery_runs(dev: DagsterDev) -> list[dict]:
    data = dev.graphql(RUNS_QUERY, {"filter": {"tags": [DISCOVERY]}})["runsOrError"]
    return sorted(data["results"], key=lambda r: r["creationTime"])


def one_round(dev: DagsterDev, src: Path, out: Path, new: list[Path]) -> dict:
    expected = [f"{p.name}_{sha256_file(p)}" for p in new if kept(p)]
    before = {r["runId"] for r in discovery_runs(dev)}
    landed = time.time()
    for path in new:  # as a user's copy: each file written in place, one after another
        shutil.copyfile(path, src / path.name)
    copied = time.time()

    def exported() -> bool:
        return all((out / f"{stem}.jpg").exists() and (out / f"{stem}.txt").exists() for stem in expected)

    wait_for(exported, 120, f"{len(expected)} new image(s) in {out}", interval=0.05)
    done = time.time()

    def finished_run() -> dict | None:
        runs = [r for r in discovery_runs(dev) if r["runId"] not in before]
        return runs[-1] if runs and runs[-1]["endTime"] else None

    run = wait_for(finished_run, 60, "the discovery run to end")
    return {
        "latency": done - landed,
        "copy": copied - landed,
        "to_created": run["creationTime"] - copied,
        "queued": run["startTime"] - run["creationTime"],
        "run": run["endTime"] - run["startTime"],
        "kept": len(expected),
        "status": run["status"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--new", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench_ingest")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS-watch.md")
    args = parser.parse_args()

    images = args.workdir / f"images-{args.images}"
    print(f"generating {args.images} images in {images} (kept between runs)…", flush=True)
    make_images(images, args.images)
    extra = args.workdir / "watch-extra"
    make_images(extra, args.new * args.rounds, start=2_000_000)
    new = sorted(extra.glob("*.jpg"))

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp_path = Path(tmp)
        src, ws = tmp_path / "src", tmp_path / "ws"
        shutil.copytree(images, src, copy_function=os.link)  # the folder the rounds add to
        flow = tmp_path / "watch_workflow.py"
        flow.write_text(WORKFLOW.format(ws=ws, src=src))
        started = time.perf_counter()
        subprocess.run([sys.executable, str(flow)], check=True, capture_output=True)
        print(f"headless ingest of {args.images} images: {time.perf_counter() - started:.1f}s", flush=True)

        env = {"DAGSTER_HOME": str(ws / "dagster_home"), "BEPREPARED_WORKFLOWS": str(flow)}
        dev = DagsterDev("beprepared_dagster.definitions", free_port(), env, tmp_path / "dev.log", tmp_path)
        rounds = []
        with dev:
            wait_for(lambda: dev.graphql(WORKSPACE_QUERY)["workspaceOrError"], 120, "dagster dev")
            time.sleep(15)  # the daemon's first sensor tick (a full scan, nothing new) has come and gone
            for i in range(args.rounds):
                batch = new[i * args.new : (i + 1) * args.new]
                result = one_round(dev, src, ws / "output", batch)
                rounds.append(result)
                print(
                    f"round {i + 1}: {result['latency']:.1f}s to the export ({result['kept']} kept of "
                    f"{len(batch)}; to run {result['to_created']:.1f}s, queued {result['queued']:.1f}s, "
                    f"run {result['run']:.1f}s, {result['status']})",
                    flush=True,
                )
                time.sleep(3)
    report(args, rounds)


def report(args: argparse.Namespace, rounds: list[dict]) -> None:
    def med(key: str) -> str:
        return f"{statistics.median(r[key] for r in rounds):.1f}"

    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## {now} — {args.images} images, {args.rounds} rounds of {args.new} new",
        "",
        f"`bench/bench_watch.py --images {args.images} --rounds {args.rounds} --new {args.new}` · "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
        "",
        "| round | files landing → exported s | landed → run created s | created → started s | run s |",
        "|---|---|---|---|---|",
        *(
            f"| {i} | {r['latency']:.1f} | {r['to_created']:.1f} | {r['queued']:.1f} | {r['run']:.1f} |"
            for i, r in enumerate(rounds, 1)
        ),
        f"| median | {med('latency')} | {med('to_created')} | {med('queued')} | {med('run')} |",
        "",
    ]
    text = "\n".join(lines)
    print("\n" + text)
    if not args.results.exists():
        args.results.write_text(
            "# bench_watch results\n\nAppended by `bench/bench_watch.py`; newest last. Under `dagster dev` "
            "with its defaults, new JPEGs copied into the Load folder of a workspace that already holds the "
            "images; the time until each one the filters keep is exported with its caption.\n\n"
        )
    with args.results.open("a") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
