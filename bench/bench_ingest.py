"""Benchmark: cold ingest, unchanged re-run and +10 images, whole processes, against a plain Python loop.

    .venv/bin/python bench/bench_ingest.py [--images 5000] [--repeats 3] [--workdir DIR] [--results FILE]
                                           [--original PYTHON]

Workflow (the one the original was measured with):
`Load >> FilterBySize(min_edge=256) >> FilterByAspectRatio(min_aspect=0.3, max_aspect=3) >> SetCaption("ohwx")
>> Save`, on N generated JPEGs of 256-2048 px (kept between runs in the work folder).

Phases, each a fresh process (`python flow.py`, as a user runs it), repeated `--repeats` times on fresh
workspaces (cold) and on the same workspace (unchanged, then +10 new images):

* plain   the same work in a plain loop: walk, read, SHA-256, header parse, both filters, copy each kept image
          to the export folder with its caption file. No store, no Dagster.
* cold    a fresh workspace.
* warm    the same again, nothing changed.
* incr    10 new images added to the folder, three times in a row.

Then, on the same workspace, `beprepared run` with its warm runner (orchestration/warm.py; Linux):

* cli-first  `beprepared run flow.py`, nothing changed: runs in its own process, then starts a warm runner.
* cli-warm   the same again, served by the warm runner (the client process's wall time).
* cli-incr   10 new images, three times in a row, served by the warm runner.

With `--original PYTHON` (an interpreter with the original tool, `pip install beprepared==0.2.3`, in its own
virtual environment), the original runs the same workflow side by side: its cold, unchanged and +10 runs
alternate with ours on the same folder, each in its own workspace.

Inside the project's process, the stage executor is wrapped at run time (nothing on disk changes) to record
when each stage starts and ends (its modules are imported for that before the run, the way `Workspace.run`
imports them: with the collector off), which gives the time before the first stage (process start → Load starts:
imports, instance, discovery, partitions, run creation with its planned events) and per-stage seconds. Peak
memory is the process's max RSS; disk is the workspace by part; Dagster history is reported per 1,000 images
per partitioned stage. Prints medians and appends the report to bench/RESULTS-ingest.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAGES = 4  # partitioned stages: load, filter_by_size, filter_by_aspect_ratio, set_caption

FLOW = textwrap.dedent(
    """
    import json, resource, sys, time
    t0 = time.time()
    from beprepared_dagster import (FilterByAspectRatio, FilterBySize, Load, Save, SetCaption, Workspace)
    from beprepared_dagster.orchestration.gcpolicy import no_collection
    with no_collection():  # as Workspace.run imports them (the instrumentation needs them earlier)
        from beprepared_dagster.orchestration import assets, executor

    marks, original = [], executor.StageExecutor.run

    def timed(self, stage, keys):
        start = time.time()
        try:
            return original(self, stage, keys)
        finally:
            marks.append([stage.name, start - t0, time.time() - t0, len(keys)])

    executor.StageExecutor.run = timed
    original_save = assets.run_save

    def timed_save(store, workflow, stage, log, keys):
        start = time.time()
        try:
            return original_save(store, workflow, stage, log, keys)
        finally:
            marks.append(["save", start - t0, time.time() - t0, len(keys)])

    assets.run_save = timed_save
    src, ws, out = sys.argv[1], sys.argv[2], sys.argv[3]
    with Workspace(ws, name="ingest") as w:
        (Load(src) >> FilterBySize(min_edge=256) >> FilterByAspectRatio(min_aspect=0.3, max_aspect=3)
         >> SetCaption("ohwx") >> Save)
        w.run()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    json.dump({"marks": marks, "import": 0, "peak_mib": peak, "end": time.time() - t0}, open(out, "w"))
    """
)

ORIGINAL = textwrap.dedent(
    """
    import json, resource, sys, time
    t0 = time.time()
    from beprepared import Workspace
    from beprepared.nodes import FilterByAspectRatio, FilterBySize, Load, Save, SetCaption
    src, ws, out = sys.argv[1], sys.argv[2], sys.argv[3]
    with Workspace(ws) as w:
        (Load(src) >> FilterBySize(min_edge=256) >> FilterByAspectRatio(min_aspect=0.3, max_aspect=3)
         >> SetCaption("ohwx") >> Save(ws + "/output"))
        w.run()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    json.dump({"peak_mib": peak, "end": time.time() - t0}, open(out, "w"))
    """
)

PLAIN = textwrap.dedent(
    """
    import hashlib, json, os, resource, shutil, sys
    from PIL import Image
    src, dst = sys.argv[1], sys.argv[2]
    os.makedirs(dst, exist_ok=True)
    kept = 0
    for root, _, names in os.walk(src):
        for name in sorted(names):
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            with Image.open(path) as image:
                w, h = image.size
            if min(w, h) < 256 or not 0.3 <= w / h <= 3:
                continue
            stem = os.path.join(dst, f"{name}_{digest}")
            shutil.copyfile(path, stem + ".jpg")
            with open(stem + ".txt", "w") as f:
                f.write("ohwx")
            kept += 1
    print(json.dumps({"kept": kept, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    """
)


def make_images(folder: Path, n: int, start: int = 0) -> None:
    """JPEGs of 256-2048 px per side: smooth colour fields with noise, ~60-400 KB like photos."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(start + 7)
    for i in range(start, start + n):
        path = folder / f"img_{i:05d}.jpg"
        if path.exists():
            continue
        w, h = rng.randint(256, 2048), rng.randint(256, 2048)
        gen = np.random.default_rng(i)
        base = Image.fromarray(gen.integers(0, 255, (12, 12, 3), dtype=np.uint8)).resize(
            (w, h), Image.BICUBIC
        )
        noise = Image.fromarray(gen.integers(0, 40, (h, w, 3), dtype=np.uint8))
        Image.blend(base, noise, 0.15).save(path, quality=85)


def du(path: Path) -> int:
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_blocks * 512
    return sum(p.lstat().st_blocks * 512 for p in path.rglob("*"))


def run_flow(script: str, src: Path, ws: Path, python: str, who: str) -> tuple[float, dict]:
    """Run a flow script (`script src ws out.json`) as a whole process: (wall seconds, what it wrote)."""
    with tempfile.TemporaryDirectory() as tmp:
        flow, out = Path(tmp) / "flow.py", Path(tmp) / "out.json"
        flow.write_text(script)
        started = time.perf_counter()
        proc = subprocess.run(
            [python, str(flow), str(src), str(ws), str(out)], capture_output=True, text=True
        )
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"{who} run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
        return wall, json.loads(out.read_text())


def run_project(src: Path, ws: Path, python: str) -> dict:
    wall, data = run_flow(FLOW, src, ws, python, "project")
    marks = data["marks"]
    stages: dict[str, float] = {}
    for name, start, end, _ in marks:
        stages[name] = stages.get(name, 0.0) + end - start
    before = marks[0][1] if marks else None
    # What is neither set-up nor our stages' own work: Dagster's events and run bookkeeping between stages.
    between = data["end"] - (before or 0.0) - sum(stages.values()) if marks else None
    return {
        "wall": wall,
        "before_first_stage": before,
        "stages": stages,
        "between": between,
        "peak_mib": data["peak_mib"],
    }


CLI_FLOW = """
from beprepared_dagster import FilterByAspectRatio, FilterBySize, Load, Save, SetCaption, Workspace
with Workspace({ws!r}, name="ingest"):
    (Load({src!r}) >> FilterBySize(min_edge=256) >> FilterByAspectRatio(min_aspect=0.3, max_aspect=3)
     >> SetCaption("ohwx") >> Save)
"""


def run_cli(flow: Path, env: dict[str, str]) -> dict:
    """`beprepared run flow.py` as a whole process (served by a warm runner when one is ready)."""
    beprepared = Path(sys.executable).parent / "beprepared"
    started = time.perf_counter()
    proc = subprocess.run([str(beprepared), "run", str(flow)], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"beprepared run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return {"wall": wall, "peak_mib": _runner_rss_mib(env)}


def _runner_rss_mib(env: dict[str, str]) -> float:
    """The resident memory of the warm runner waiting for commands (0 when there is none)."""
    for status in _runners(env):
        try:
            for line in Path(f"/proc/{status['pid']}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
    return 0.0


def _runners(env: dict[str, str]) -> list[dict]:
    from beprepared_dagster.orchestration import warm

    return warm.runners(env)


def cli_phases(rows: dict[str, list[dict]], src: Path, ws: Path, work: Path, extras: list[Path]) -> None:
    """cli-first (starts the warm runner), cli-warm, then three cli-incr; the runner is stopped after."""
    sockets = work / "warm-sockets"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEPREPARED_")}
    env.update(BEPREPARED_WARM="1", BEPREPARED_WARM_DIR=str(sockets), BEPREPARED_WARM_IDLE="600")
    flow = work / "cli_flow.py"
    flow.write_text(CLI_FLOW.format(ws=str(ws), src=str(src)))
    rows["cli-first"].append(run_cli(flow, env))
    deadline = time.monotonic() + 120
    while not _runners(env):
        if time.monotonic() > deadline:
            raise SystemExit("the warm runner did not start")
        time.sleep(0.2)
    rows["cli-warm"].append(run_cli(flow, env))
    for extra in extras:
        for p in extra.iterdir():
            shutil.copyfile(p, src / p.name)
        rows["cli-incr"].append(run_cli(flow, env))
    for status in _runners(env):
        os.kill(status["pid"], 15)


def run_original(src: Path, ws: Path, python: str) -> dict:
    wall, data = run_flow(ORIGINAL, src, ws, python, "original")
    return {"wall": wall, "peak_mib": data["peak_mib"]}


def run_plain(src: Path, dst: Path, python: str) -> dict:
    shutil.rmtree(dst, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "plain.py"
        script.write_text(PLAIN)
        started = time.perf_counter()
        proc = subprocess.run(
            [python, str(script), str(src), str(dst)], capture_output=True, text=True, check=True
        )
        wall = time.perf_counter() - started
    return {"wall": wall, **json.loads(proc.stdout)}


def compile_bytecode() -> None:
    """Byte-compile the project's package first, as installing it from a wheel does (and as the first import
    does on a usual machine). Where PYTHONDONTWRITEBYTECODE is set (some sandboxes set it), an editable
    install would otherwise compile its ~70 modules from source in every process (~0.1 s each run); the
    original's modules, installed by pip, are compiled already."""
    import compileall

    compileall.compile_dir(str(HERE.parent / "beprepared_dagster"), quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench_ingest")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS-ingest.md")
    parser.add_argument("--original", help="a Python with beprepared 0.2.3 installed, to run side by side")
    args = parser.parse_args()
    python = sys.executable
    compile_bytecode()
    work = args.workdir
    pool = work / f"images-{args.images}"
    print(f"generating {args.images} images in {pool} (kept between runs)…", flush=True)
    make_images(pool, args.images)
    extras = [work / f"extra-10-{i}" for i in range(3)]
    cli_extras = [work / f"extra-10-{i}" for i in range(3, 6)]
    for i, folder in enumerate(extras + cli_extras):
        make_images(folder, 10, start=10**6 + 10 * i)

    rows: dict[str, list[dict]] = {"plain": [], "cold": [], "warm": [], "incr": []}
    if sys.platform.startswith("linux"):
        rows.update({"cli-first": [], "cli-warm": [], "cli-incr": []})
    original: dict[str, list[dict]] = {"cold": [], "warm": [], "incr": []}
    disk: dict[str, int] = {}
    for r in range(args.repeats):
        src = work / "src"
        shutil.rmtree(src, ignore_errors=True)
        shutil.copytree(pool, src, copy_function=os.link)  # same files, a folder we can add to
        rows["plain"].append(run_plain(src, work / "plain-out", python))
        ws, ows = work / f"ws-{r}", work / f"ws-original-{r}"
        shutil.rmtree(ws, ignore_errors=True)
        shutil.rmtree(ows, ignore_errors=True)

        def both(phase: str, r: int = r, src: Path = src, ws: Path = ws, ows: Path = ows) -> None:
            order = ["original", "ours"] if r % 2 == 0 else ["ours", "original"]  # who goes first alternates
            for who in order:
                if who == "ours":
                    rows[phase].append(run_project(src, ws, python))
                elif args.original:
                    original[phase].append(run_original(src, ows, args.original))

        both("cold")
        both("warm")
        for extra in extras:  # three increments of 10 (the history budget is cold + three increments)
            for p in extra.iterdir():
                shutil.copyfile(p, src / p.name)
            both("incr")
        print(
            f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]['wall']:.1f}s" for k, v in rows.items() if v),
            flush=True,
        )
        if r == args.repeats - 1:
            disk = {
                part: du(ws / part) for part in ("objects", "beprepared.duckdb", "dagster_home", "output")
            }
            disk["source images"] = du(src)
        if "cli-first" in rows:  # after the disk figures: the history budget is cold + three increments
            cli_phases(rows, src, ws, work, cli_extras)
        shutil.rmtree(ws, ignore_errors=True)
        shutil.rmtree(ows, ignore_errors=True)

    report = render(args, rows, disk, original)
    print(report)
    with open(args.results, "a") as f:
        f.write(report + "\n")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def render(
    args: argparse.Namespace,
    rows: dict[str, list[dict]],
    disk: dict[str, int],
    original: dict[str, list[dict]],
) -> str:
    plain = median([r["wall"] for r in rows["plain"]])
    load = os.getloadavg()
    lines = [
        f"## {_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M} UTC — {args.images} images, {args.repeats} repeats",
        "",
        f"`bench/bench_ingest.py --images {args.images} --repeats {args.repeats}"
        f"{' --original …' if args.original else ''}` · {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load average at the end {load[0]:.1f}",
        "",
        "| phase | median wall s | runs | × plain loop | before first stage s | peak RSS MiB |",
        "|---|---|---|---|---|---|",
    ]
    for phase, runs in rows.items():
        walls = [r["wall"] for r in runs]
        before = [r["before_first_stage"] for r in runs if r.get("before_first_stage") is not None]
        lines.append(
            f"| {phase} | {median(walls):.2f} | {', '.join(f'{w:.1f}' for w in walls)} | "
            f"{median(walls) / plain:.2f} | {median(before):.2f} | {median([r['peak_mib'] for r in runs]):.0f} |"
            if before
            else f"| {phase} | {median(walls):.2f} | {', '.join(f'{w:.1f}' for w in walls)} | "
            f"{median(walls) / plain:.2f} | – | {median([r['peak_mib'] for r in runs]):.0f} |"
        )
    if rows.get("cli-first"):
        lines += [
            "",
            "cli-*: `beprepared run flow.py` as a whole client process on the same workspace (cli-warm and "
            "cli-incr served by the warm runner that cli-first started); their peak RSS column is the warm "
            "runner's resident memory while it waits.",
        ]
    if any(original.values()):
        lines += [
            "",
            "Side by side with the original (beprepared 0.2.3, same folder, runs alternating):",
            "",
            "| phase | this project median s | original median s | runs (original) | ratio | original peak RSS MiB |",
            "|---|---|---|---|---|---|",
        ]
        for phase, runs in original.items():
            ours = median([r["wall"] for r in rows[phase]])
            walls = [r["wall"] for r in runs]
            theirs = median(walls)
            lines.append(
                f"| {phase} | {ours:.2f} | {theirs:.2f} | {', '.join(f'{w:.1f}' for w in walls)} | "
                f"{ours / theirs:.2f} | {median([r['peak_mib'] for r in runs]):.0f} |"
            )
    stage_names = list(rows["cold"][0]["stages"]) if rows["cold"] else []
    lines += ["", "Per-stage seconds (median; cold / warm / incr):", ""]
    for name in stage_names:
        per = [median([r["stages"].get(name, 0.0) for r in rows[p]]) for p in ("cold", "warm", "incr")]
        per_image = per[0] / args.images * 1000
        lines.append(
            f"- {name}: {per[0]:.2f} / {per[1]:.2f} / {per[2]:.2f} ({per_image:.2f} ms per image cold)"
        )
    between = median([r["between"] for r in rows["cold"] if r.get("between") is not None])
    lines.append(
        f"- Dagster between and after our stages (events, run start/end), cold: {between:.2f} s = "
        f"{between / (args.images * STAGES) * 1000:.3f} ms per (stage, image)"
    )
    history = disk.get("dagster_home", 0)
    lines += [
        "",
        "Workspace on disk after cold + unchanged + 3 increments (MiB): "
        + ", ".join(f"{k} {v / 2**20:.1f}" for k, v in disk.items()),
        f"Dagster history: {history / 2**20 / (args.images / 1000) / STAGES:.2f} MiB per 1,000 images per "
        "partitioned stage",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
