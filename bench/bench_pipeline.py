"""Benchmark: where the time of a headless `workspace.run()` goes, against a plain Python loop.

    .venv/bin/python bench/bench_pipeline.py [--images N] [--workdir DIR] [--results FILE]

Workflow measured: `Load(folder) >> FilterBySize(min_edge=200) >> ConvertFormat("PNG") >> Save`.

Phases, each in its own child process (so `ru_maxrss` is that phase's own peak, and imports are not timed):

* baseline   the same per-image work as a plain loop: read, sha256, copy into an object store, probe, the
             FilterBySize rule, convert to PNG, store it, write the export file and its .json sidecar.
             No DuckDB, no Dagster.
* executor   the Dagster-free path over a fresh workspace: discovery, `StageExecutor.run` per stage, then
             `run_save` (node work + DuckDB bookkeeping, no Dagster).
* cold       `Workflow(...).run()` on a fresh workspace (in-process Dagster).
* warm       the same again, nothing changed.
* incr       1% new images added to the folder, run again.

Every phase runs twice: a TIMED pass (no tracemalloc: tracemalloc slows allocation-heavy code such as
Dagster's several-fold) and a TRACED pass on a separate fresh workspace, which gives the tracemalloc peak of
the Python allocations made during the phase (`--no-traced-pass` skips it).

Inside the executor and Dagster phases, a few package functions are wrapped at run time (nothing on disk is
changed) to split wall time exclusively into: node work, discovery hashing, export file writing, DuckDB
(time inside `Database.connect()` blocks, open/close included), Dagster (runs, partitions, instance/defs) and
the rest.

This prints figures; it is not a test. The report is also appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import functools
import gc
import hashlib
import io
import json
import os
import platform
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SEED = 20241125
MIN_EDGE = 200
BIG, SMALL = (320, 240), (200, 150)  # the small ones (every 10th) are rejected by FilterBySize(min_edge=200)
WORKFLOW_NAME = "bench"


# --- image generation ------------------------------------------------------------------------------------


def make_jpeg(index: int) -> bytes:
    """A deterministic, distinct, photo-ish small JPEG (gradient, shapes, a little noise, its index)."""
    from PIL import Image, ImageDraw

    rng = random.Random(SEED * 1_000_003 + index)
    size = SMALL if index % 10 == 7 else BIG
    w, h = size
    c1 = [rng.randrange(256) for _ in range(3)]
    c2 = [rng.randrange(256) for _ in range(3)]
    grad = Image.linear_gradient("L").resize(size).rotate(rng.choice([0, 90, 180, 270]), expand=False)
    image = Image.composite(Image.new("RGB", size, tuple(c1)), Image.new("RGB", size, tuple(c2)), grad)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        x1, y1 = min(w, x0 + rng.randrange(10, w // 2)), min(h, y0 + rng.randrange(10, h // 2))
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    draw.text((4, 4), f"#{index}", fill=(255, 255, 255))
    noise = Image.effect_noise(size, 12).convert("RGB")
    image = Image.blend(image, noise, 0.08)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def generate(folder: Path, indices: range, label: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths, seen = [], set()
    total = len(indices)
    started = time.perf_counter()
    for n, i in enumerate(indices, 1):
        data = make_jpeg(i)
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            raise SystemExit(f"image {i} is not distinct")
        seen.add(digest)
        path = folder / f"img_{i:06d}.jpg"
        path.write_bytes(data)
        paths.append(path)
        if n % 50 == 0 or n == total:
            print(
                f"\r  generating {label}: {n}/{total} ({time.perf_counter() - started:.1f}s)",
                end="",
                flush=True,
            )
    print()
    return paths


def prepare_images(src: Path, n: int, extra: int) -> tuple[Path, Path]:
    base, more = src / "base", src / "extra"
    marker = src / "images.json"
    wanted = {"n": n, "extra": extra, "seed": SEED, "sizes": [BIG, SMALL]}
    try:
        if json.loads(marker.read_text()) == json.loads(json.dumps(wanted)):
            print(f"  reusing {n} + {extra} images in {src}")
            return base, more
    except (OSError, ValueError):
        pass
    shutil.rmtree(src, ignore_errors=True)
    generate(base, range(n), f"{n} images")
    generate(more, range(n, n + extra), f"{extra} incremental images")
    marker.write_text(json.dumps(wanted))
    return base, more


def link_tree(files: list[Path], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        dest = folder / f.name
        try:
            os.link(f, dest)
        except OSError:
            shutil.copy2(f, dest)


# --- instrumentation (child processes) ---------------------------------------------------------------------


class Profile:
    """Exclusive wall time per category: a region's time minus the instrumented regions nested in it."""

    def __init__(self) -> None:
        self.excl: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.local = threading.local()
        self.main = threading.get_ident()
        self.foreign = 0

    @contextlib.contextmanager
    def region(self, name: str):
        if threading.get_ident() != self.main:
            self.foreign += 1
            yield
            return
        stack = self.local.__dict__.setdefault("stack", [])
        frame = [name, 0.0]
        stack.append(frame)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t0
            stack.pop()
            self.excl[name] = self.excl.get(name, 0.0) + dt - frame[1]
            self.calls[name] = self.calls.get(name, 0) + 1
            if stack:
                stack[-1][1] += dt

    def watch_gc(self) -> None:
        """Count collector pauses (they land inside whatever region allocates; reported separately)."""
        self.gc_s, self.gc_runs, started = 0.0, [0, 0, 0], [0.0]

        def callback(phase: str, info: dict) -> None:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                self.gc_s += time.perf_counter() - started[0]
                self.gc_runs[info["generation"]] += 1

        gc.callbacks.append(callback)

    def wrap(self, owner: Any, attr: str, name: str) -> None:
        original = getattr(owner, attr)
        prof = self

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with prof.region(name):
                return original(*args, **kwargs)

        setattr(owner, attr, wrapper)

    def wrap_cm(self, owner: Any, attr: str, name: str) -> None:
        """Wrap a method returning a context manager: time from the call to the end of the `with` block."""
        original = getattr(owner, attr)
        prof = self

        @contextlib.contextmanager
        def wrapper(*args: Any, **kwargs: Any):
            with prof.region(name), original(*args, **kwargs) as value:
                yield value

        setattr(owner, attr, wrapper)


def instrument(prof: Profile, dagster: bool) -> None:
    from beprepared_dagster.orchestration import discovery, executor
    from beprepared_dagster.orchestration import export as export_mod
    from beprepared_dagster.store import db

    prof.wrap_cm(db.Database, "connect", "duckdb")
    prof.wrap(executor.StageExecutor, "_compute", "node")
    prof.wrap(executor.StageExecutor, "_load_one", "node")
    prof.wrap(discovery, "scan_folder", "discovery_scan")
    prof.wrap(export_mod, "export_folder", "export_files")
    if dagster:
        import dagster as dg

        from beprepared_dagster.orchestration import runner

        prof.wrap(runner, "_materialize", "dagster_runs")
        prof.wrap(runner, "open_instance", "dagster_setup")
        prof.wrap(runner, "build_definitions", "dagster_setup")
        prof.wrap(dg.DagsterInstance, "add_dynamic_partitions", "dagster_partitions")
        prof.wrap(dg.DagsterInstance, "get_dynamic_partitions", "dagster_partitions")


def build_workflow(images: Path, workspace: Path):
    from beprepared_dagster import ConvertFormat, FilterBySize, Load, Save, Workflow

    return Workflow(
        WORKFLOW_NAME,
        Load(images) >> FilterBySize(min_edge=MIN_EDGE) >> ConvertFormat("PNG") >> Save,
        workspace=workspace,
    )


def event_counts(workspace: Path) -> dict[str, int]:
    index = workspace / "dagster_home" / "history" / "runs" / "index.db"
    if not index.exists():
        return {}
    conn = sqlite3.connect(str(index))
    try:
        return dict(
            conn.execute("SELECT coalesce(dagster_event_type, ''), count(*) FROM event_logs GROUP BY 1")
        )
    finally:
        conn.close()


def tree_bytes(path: Path) -> int:
    total = 0
    for root, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child_main(spec: dict) -> None:
    import logging

    t_import = time.perf_counter()
    from PIL import Image  # noqa: F401

    from beprepared_dagster.nodes import imaging  # noqa: F401

    if spec["phase"] != "baseline":
        import duckdb  # noqa: F401

        from beprepared_dagster.orchestration import executor, export  # noqa: F401
    if spec["phase"] == "pipeline":
        import dagster  # noqa: F401

        from beprepared_dagster.orchestration import runner  # noqa: F401
    result: dict[str, Any] = {
        "import_s": time.perf_counter() - t_import,
        "rss_after_import_mib": maxrss_mib(),
    }
    prof = Profile()
    if spec["phase"] != "baseline":
        instrument(prof, dagster=spec["phase"] == "pipeline")
    logging.basicConfig(level=logging.WARNING)
    prof.watch_gc()
    if spec["trace"]:
        tracemalloc.start(1)
    t0 = time.perf_counter()
    with prof.region("other"):
        if spec["phase"] == "baseline":
            result.update(run_baseline(Path(spec["images"]), Path(spec["out"])))
        elif spec["phase"] == "executor":
            result.update(run_executor(Path(spec["images"]), Path(spec["workspace"])))
        else:
            workspace = Path(spec["workspace"])
            before = event_counts(workspace)
            summary = build_workflow(Path(spec["images"]), workspace).run()
            after = event_counts(workspace)
            result["dagster_runs"] = len(summary.run_ids)
            result["planned_ranges"] = len(summary.runs)
            result["new_images"] = summary.new_images
            result["events"] = sum(after.values()) - sum(before.values())
            result["events_by_type"] = {
                k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)
            }
    result["wall_s"] = time.perf_counter() - t0
    if spec["trace"]:
        result["py_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    result["rss_peak_mib"] = maxrss_mib()
    result["split_s"] = prof.excl
    result["calls"] = prof.calls
    result["dagster_imported"] = "dagster" in sys.modules
    result["gc_s"], result["gc_runs"] = prof.gc_s, prof.gc_runs
    result["foreign_thread_regions"] = prof.foreign
    if spec["phase"] != "baseline":
        workspace = Path(spec["workspace"])
        result["duckdb_bytes"] = (workspace / "beprepared.duckdb").stat().st_size
        result["dagster_home_bytes"] = tree_bytes(workspace / "dagster_home")
        output = workspace / "output"
        result["exported_images"] = sorted(p.stem.rsplit("_", 1)[1] for p in output.glob("*.png"))
    Path(spec["result"]).write_text(json.dumps(result))


def run_executor(images: Path, workspace: Path) -> dict[str, Any]:
    import logging

    from beprepared_dagster.nodes.base import SinkNode
    from beprepared_dagster.orchestration.discovery import discover
    from beprepared_dagster.orchestration.executor import StageExecutor
    from beprepared_dagster.orchestration.export import run_save
    from beprepared_dagster.store.workspace import WorkspaceStore

    log = logging.getLogger("bench.executor")
    workflow = build_workflow(images, workspace)
    store = WorkspaceStore(workflow.workspace_dir)
    found = discover(store, workflow, set(), log)
    keys = found.new_keys
    stage_s = {}
    for stage in workflow.stages:
        t = time.perf_counter()
        if isinstance(stage.node, SinkNode):
            run_save(store, workflow, stage, log)
        else:
            report = StageExecutor(store, workflow, log).run(stage, keys)
            if report.errors:
                raise SystemExit(f"{stage.name}: {len(report.errors)} errors")
        stage_s[stage.name] = time.perf_counter() - t
    return {"new_images": len(keys), "stage_s": stage_s}


def run_baseline(images: Path, out: Path) -> dict[str, Any]:
    from beprepared_dagster.nodes import imaging

    objects, export = out / "objects", out / "export"
    export.mkdir(parents=True, exist_ok=True)
    t: dict[str, float] = {k: 0.0 for k in ("read+sha256", "store", "probe", "filter", "convert", "export")}

    def store(data: bytes, digest: str) -> Path:
        final = objects / digest[:2] / digest[2:4] / digest
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, final)
        return final

    kept = rejected = 0
    exported = []
    for path in sorted(images.iterdir()):
        a = time.perf_counter()
        data = path.read_bytes()
        oid = hashlib.sha256(data).hexdigest()
        b = time.perf_counter()
        store(data, oid)
        c = time.perf_counter()
        info = imaging.probe(data)
        d = time.perf_counter()
        ok = min(info["width"], info["height"]) >= MIN_EDGE
        e = time.perf_counter()
        t["read+sha256"] += b - a
        t["store"] += c - b
        t["probe"] += d - c
        t["filter"] += e - d
        if not ok:
            rejected += 1
            continue
        png, width, height = imaging.convert(data, "PNG", 95)
        f_ = time.perf_counter()
        pid = hashlib.sha256(png).hexdigest()
        store(png, pid)
        g = time.perf_counter()
        stem = f"{path.name}_{pid}"
        (export / f"{stem}.png").write_bytes(png)
        props = {
            "objectid": pid,
            "original_path": str(path),
            "width": width,
            "height": height,
            "format": "PNG",
            "ext": ".png",
            "mode": info["mode"],
            "orientation": 1,
        }
        (export / f"{stem}.json").write_text(json.dumps(props, indent=2, sort_keys=True) + "\n")
        h = time.perf_counter()
        t["convert"] += f_ - e
        t["store"] += g - f_
        t["export"] += h - g
        kept += 1
        exported.append(pid)
    return {"kept": kept, "rejected": rejected, "ops_s": t, "exported_images": sorted(exported)}


# --- parent ----------------------------------------------------------------------------------------------


def run_child(spec: dict, logs: Path, label: str, env: dict[str, str] | None = None) -> dict:
    logs.mkdir(parents=True, exist_ok=True)
    os.sync()  # flush the previous phase's dirty pages, so they do not slow this phase's fsyncs (SQLite)
    result = logs / f"{label}.json"
    spec = {**spec, "result": str(result)}
    log_path = logs / f"{label}.log"
    print(f"  {label:<22} ", end="", flush=True)
    started = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.run(
            [sys.executable, __file__, "--_child", json.dumps(spec)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(logs.parent),
            env={**os.environ, **(env or {})},
        )
    if proc.returncode != 0:
        print("FAILED")
        print(log_path.read_text()[-4000:])
        raise SystemExit(f"phase {label} failed (rc {proc.returncode}); log: {log_path}")
    data = json.loads(result.read_text())
    print(f"{data['wall_s']:8.2f}s  (process {time.perf_counter() - started:.1f}s)")
    return data


def versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for name in ("dagster", "duckdb", "pillow", "beprepared-dagster"):
        try:
            out[name] = version(name)
        except Exception:
            out[name] = "?"
    return out


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def fmt_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for n, r in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


SPLIT_ORDER = [
    ("node", "node work"),
    ("discovery_scan", "discovery hashing"),
    ("export_files", "Save files"),
    ("duckdb", "DuckDB"),
    ("dagster_runs", "Dagster runs"),
    ("dagster_partitions", "Dagster partitions"),
    ("dagster_setup", "Dagster setup"),
    ("other", "other"),
]


def report(env: dict[str, str], n: int, extra: int, stages: int, timed: dict, traced: dict) -> list[str]:
    v = versions()
    lines = [
        f"N = {n} images ({n - n // 10 - (1 if n % 10 > 7 else 0)} of {BIG[0]}x{BIG[1]}, the rest {SMALL[0]}x{SMALL[1]} "
        f"rejected by FilterBySize(min_edge={MIN_EDGE})); incremental adds {extra}; partitioned stages = {stages}",
        f"machine: {os.cpu_count()} CPUs ({cpu_model()}), {platform.system()} {platform.release()}; "
        f"Python {v['python']}, dagster {v['dagster']}, duckdb {v['duckdb']}, Pillow {v['pillow']}",
        f"extra environment: {' '.join(f'{k}={val}' for k, val in env.items()) or 'none'}",
        "",
    ]
    order = [
        ("baseline", "baseline loop"),
        ("executor", "executor (cold)"),
        ("cold", "dagster cold"),
        ("warm", "dagster warm"),
        ("incr", "dagster incremental"),
    ]
    rows = []
    for key, label in order:
        r, m = timed[key], traced.get(key, {})
        processed = r.get("new_images", n) if key != "baseline" else n
        if key == "warm":
            processed = n
        rate = processed / r["wall_s"] if r["wall_s"] else 0
        rows.append(
            [
                label,
                r.get("new_images", n) if key in ("incr", "cold", "executor") else n,
                f"{r['wall_s']:.2f}",
                f"{rate:.1f}",
                r.get("dagster_runs", "-"),
                r.get("events", "-"),
                f"{m['py_peak_mib']:.1f}" if "py_peak_mib" in m else "-",
                f"{r['rss_after_import_mib']:.0f} → {r['rss_peak_mib']:.0f}",
                f"{m['wall_s']:.2f}" if m else "-",
            ]
        )
    lines += fmt_table(
        [
            "phase",
            "images",
            "wall s",
            "img/s",
            "dagster runs",
            "events",
            "tracemalloc peak MiB",
            "maxrss MiB import→peak",
            "wall s w/ tracemalloc",
        ],
        rows,
    )
    lines += [
        "",
        "images = images new to the phase (warm: all N re-checked; its img/s is N / wall). events = rows added to "
        "Dagster's",
        "event-log index (history/runs/index.db). maxrss = ru_maxrss of the phase's own process, after imports → "
        "at the end.",
        "",
        "Exclusive wall-time split (seconds, timed pass):",
    ]
    split_rows = []
    for key, label in order[1:]:
        s = timed[key]["split_s"]
        split_rows.append(
            [label] + [f"{s.get(k, 0.0):.2f}" for k, _ in SPLIT_ORDER] + [f"{sum(s.values()):.2f}"]
        )
    lines += fmt_table(["phase"] + [lab for _, lab in SPLIT_ORDER] + ["total"], split_rows)
    b = timed["baseline"]["ops_s"]
    lines += ["", "Baseline loop per operation (s): " + ", ".join(f"{k} {val:.2f}" for k, val in b.items())]
    ex = timed["executor"]
    lines += ["Executor per stage (s): " + ", ".join(f"{k} {val:.2f}" for k, val in ex["stage_s"].items())]
    c = timed["cold"]

    def conns(key: str) -> str:
        r = timed[key]
        k = r["calls"].get("duckdb", 0)
        return f"{key} {k} ({r['split_s'].get('duckdb', 0.0) / max(k, 1) * 1000:.0f} ms each)"

    def gcs(key: str) -> str:
        r = timed[key]
        return f"{key} {r['gc_s']:.2f}s ({'/'.join(map(str, r['gc_runs']))})"

    lines += [
        "DuckDB transactions (each opens and closes the file): "
        + ", ".join(conns(k) for k in ("executor", "cold", "warm", "incr")),
        "GC pauses, inside the split above (gen0/1/2 collections): "
        + ", ".join(gcs(k) for k in ("baseline", "executor", "cold", "warm", "incr")),
        f"Cold-run Dagster events by type: {json.dumps(c.get('events_by_type', {}), sort_keys=True)}",
        f"Workspace after incremental: DuckDB {timed['incr']['duckdb_bytes'] / 2**20:.1f} MiB, "
        f"dagster_home {timed['incr']['dagster_home_bytes'] / 2**20:.1f} MiB",
    ]
    # ratios
    base, exe, cold, warm, inc = (
        timed[k]["wall_s"] for k in ("baseline", "executor", "cold", "warm", "incr")
    )
    per = n * stages
    inc_new = timed["incr"].get("new_images", extra) or 1
    dag_cold = sum(c["split_s"].get(k, 0.0) for k in ("dagster_runs", "dagster_partitions", "dagster_setup"))
    db_cold = c["split_s"].get("duckdb", 0.0)
    lines += [
        "",
        "Ratios:",
        f"  cold wall / baseline wall            = {cold / base:.2f}x",
        f"  executor wall / baseline wall        = {exe / base:.2f}x",
        f"  orchestration overhead, cold         = (cold - baseline) / (N x {stages}) = {(cold - base) / per * 1000:.2f} ms per (stage, image)",
        f"    of which executor + DuckDB         = (executor - baseline) / (N x {stages}) = {(exe - base) / per * 1000:.2f} ms",
        f"    of which Dagster                   = (cold - executor) / (N x {stages}) = {(cold - exe) / per * 1000:.2f} ms",
        f"    measured inside cold: DuckDB {db_cold / per * 1000:.2f} ms, Dagster {dag_cold / per * 1000:.2f} ms per (stage, image)",
        f"  warm bookkeeping                     = warm / (N x {stages}) = {warm / per * 1000:.3f} ms per (stage, image)"
        f"  (warm / cold = {warm / cold:.3f})",
        f"  incremental                          = {inc:.2f}s for {inc_new} new images; their node work is ~{base * inc_new / n:.2f}s "
        f"(baseline pro rata), so ~{inc - base * inc_new / n:.2f}s is fixed cost",
        f"  Dagster time per event written       = {c['split_s'].get('dagster_runs', 0.0) / max(c.get('events', 0), 1) * 1000:.1f} ms "
        f"(cold: Dagster runs time / {c.get('events', 0)} events)",
    ]
    lines += [
        "Imports before timing: "
        + ", ".join(
            f"{k} {timed[k]['import_s']:.2f}s" + (" (dagster)" if timed[k].get("dagster_imported") else "")
            for k in ("baseline", "executor", "cold")
        ),
        "Each phase runs after os.sync(), in its own process; the tracemalloc pass repeats every phase on fresh folders.",
    ]
    same = (
        timed["cold"]["exported_images"]
        == timed["baseline"]["exported_images"]
        == timed["executor"]["exported_images"]
    )
    lines += [
        "",
        f"Check: the baseline, executor and cold exports hold the same {len(timed['baseline']['exported_images'])} PNG objects: "
        f"{'yes' if same else 'NO (see the logs)'}; after incremental: {len(timed['incr']['exported_images'])}",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000, help="how many images (default 2000)")
    parser.add_argument(
        "--workdir", type=Path, help="keep images and workspaces here (default: a temp folder, removed)"
    )
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md", help="append the report here")
    parser.add_argument("--no-results", action="store_true", help="print only, do not append to --results")
    parser.add_argument("--no-traced-pass", action="store_true", help="skip the tracemalloc pass")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment for the executor and Dagster phases, e.g. "
        "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=1 (repeatable)",
    )
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        child_main(json.loads(args._child))
        return
    n = args.images
    try:
        env = dict(item.split("=", 1) for item in args.env)
    except ValueError:
        parser.error("--env takes KEY=VALUE")
    if n < 20:
        parser.error("--images must be at least 20")
    extra = max(1, n // 100)
    temp = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-")) if temp else args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"workdir {workdir}")
    started = time.perf_counter()
    try:
        base, more = prepare_images(workdir / "src", n, extra)
        base_files, extra_files = sorted(base.iterdir()), sorted(more.iterdir())
        passes = {"timed": False} if args.no_traced_pass else {"timed": False, "traced": True}
        results: dict[str, dict] = {}
        for pass_name, trace in passes.items():
            print(f"{pass_name} pass{' (tracemalloc on)' if trace else ''}:")
            root = workdir / pass_name
            shutil.rmtree(root, ignore_errors=True)
            logs = root / "logs"
            out: dict[str, dict] = {}
            common = {"trace": trace}
            link_tree(base_files, root / "images")
            out["baseline"] = run_child(
                {
                    **common,
                    "phase": "baseline",
                    "images": str(root / "images"),
                    "out": str(root / "baseline"),
                },
                logs,
                "baseline",
            )
            out["executor"] = run_child(
                {
                    **common,
                    "phase": "executor",
                    "images": str(root / "images"),
                    "workspace": str(root / "ws-executor"),
                },
                logs,
                "executor",
                env,
            )
            spec = {
                **common,
                "phase": "pipeline",
                "images": str(root / "images"),
                "workspace": str(root / "ws"),
            }
            out["cold"] = run_child(spec, logs, "cold", env)
            out["warm"] = run_child(spec, logs, "warm", env)
            link_tree(extra_files, root / "images")
            out["incr"] = run_child(spec, logs, "incr", env)
            results[pass_name] = out
        from beprepared_dagster.nodes.base import SinkNode

        stages = sum(
            1 for s in build_workflow(base, workdir / "unused-ws").stages if not isinstance(s.node, SinkNode)
        )
        lines = report(env, n, extra, stages, results["timed"], results.get("traced", {}))
        print()
        print("\n".join(lines))
        print(f"\n(benchmark took {time.perf_counter() - started:.0f}s)")
        if not args.no_results:
            stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
            section = [
                f"## {stamp} — N={n}",
                "",
                f"`{' '.join(['bench/bench_pipeline.py'] + sys.argv[1:])}`",
                "",
                "```",
                *lines,
                "```",
                "",
            ]
            new = not args.results.exists()
            with open(args.results, "a") as f:
                if new:
                    f.write(
                        "# bench_pipeline results\n\nAppended by `bench/bench_pipeline.py`; newest last.\n\n"
                    )
                f.write("\n".join(section) + "\n")
            print(f"appended to {args.results}")
    finally:
        if temp:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
