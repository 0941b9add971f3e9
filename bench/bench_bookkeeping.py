"""Benchmark: Dagster's bookkeeping per (stage, image) in headless range runs, against a plain Python loop.

    .venv/bin/python bench/bench_bookkeeping.py [--images 2000 10000] [--default-max 2000]
        [--postgres 127.0.0.1:5433] [--scale 100000] [--workdir DIR] [--results FILE]

Workflow: `Load >> FilterBySize(min_edge=32) >> FilterByAspectRatio(max_aspect=2.5) >> ConvertFormat("PNG")
>> Save` over tiny generated JPEGs (64x48; every 10th is 24x18 and fails the size filter, every 10th+3 is
128x40 and fails the aspect filter), so node work is small and Dagster's share is easy to see. The four
partitioned stages are the "stages" of "per (stage, image)"; Save is one unpartitioned run.

Phases, each in its own process (imports untimed; peak RSS is that process's own):

* loop       the same node work as a plain Python loop (read, sha256, store, probe, both filters, convert,
             store, export + sidecar): the limit.
* executor   beprepared without Dagster (discovery, StageExecutor per stage, Save): node work + DuckDB.
* batched    `workflow.run()` on a fresh workspace with the dagster.yaml beprepared writes (the batched
             event log; DAGSTER_EVENT_BATCH_SIZE from the storage): cold, then warm (nothing changed).
* default    the same with Dagster's default storage and no batching (N <= --default-max only).
* postgres   the same with dagster-postgres (`storage: postgres:`, DAGSTER_EVENT_BATCH_SIZE=1000) on a server
             the user started; skipped with a message when none answers at --postgres.
* scale      `Load` alone over --scale images (one range run), then the Dagster UI's queries for that asset
             (partition stats, partition statuses, latest materialization) against a real dagster-webserver.

"Dagster overhead" is measured inside the run process: the wall time of the Dagster calls (runs, partition
and instance set-up) minus the beprepared work nested in them (StageExecutor.run, Save's export), divided by
N x 4. The cross-check "(wall - executor wall) / (N x 4)" comes from two processes, so it carries their noise.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_pipeline as bp  # noqa: E402  (shared helpers: Profile, link_tree, fmt_table, versions, …)

STAGES = 4
SIZES = {"kept": (64, 48), "small": (24, 18), "wide": (128, 40)}


# --- images ------------------------------------------------------------------------------------------------


def image_bytes(index: int, size: tuple[int, int] | None = None) -> bytes:
    """A deterministic, distinct tiny JPEG: a colour per index and the index as a bit pattern."""
    from PIL import Image, ImageDraw

    if size is None:
        size = SIZES["small"] if index % 10 == 7 else SIZES["wide"] if index % 10 == 3 else SIZES["kept"]
    image = Image.new("RGB", size, ((index * 37) % 256, (index * 91) % 256, (index * 53) % 256))
    draw = ImageDraw.Draw(image)
    for bit in range(24):
        if (index >> bit) & 1:
            draw.point((bit % size[0], bit // size[0]), fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def generate(folder: Path, count: int, size: tuple[int, int] | None = None) -> Path:
    """`count` distinct images in `folder`, reused when a previous run made the same ones."""
    marker = folder / ".made"
    wanted = json.dumps({"count": count, "size": size, "version": 1})
    if marker.exists() and marker.read_text() == wanted:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    seen: set[str] = set()
    for i in range(count):
        data = image_bytes(i, size)
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            raise SystemExit(f"image {i} is not distinct")
        seen.add(digest)
        (folder / f"img_{i:06d}.jpg").write_bytes(data)
    marker.write_text(wanted)
    return folder


# --- running phases ------------------------------------------------------------------------------------------


def run_child(spec: dict, logs: Path, label: str, env: dict[str, str] | None = None) -> dict:
    """Run one phase in a fresh process (this file with --_child); its JSON result."""
    logs.mkdir(parents=True, exist_ok=True)
    os.sync()  # flush the previous phase's dirty pages, so they do not slow this phase's fsyncs
    result, log_path = logs / f"{label}.json", logs / f"{label}.log"
    spec = {**spec, "result": str(result)}
    print(f"  {label:<26}", end="", flush=True)
    load = os.getloadavg()[0]  # other work on this machine skews every figure: shown beside them
    started = time.perf_counter()
    child_env = {k: v for k, v in os.environ.items() if k != "DAGSTER_EVENT_BATCH_SIZE"}
    with open(log_path, "w") as log:
        proc = subprocess.run(
            [sys.executable, __file__, "--_child", json.dumps(spec)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**child_env, **(env or {})},
        )
    if proc.returncode != 0:
        print("FAILED")
        print(log_path.read_text()[-4000:])
        raise SystemExit(f"phase {label} failed (rc {proc.returncode}); log: {log_path}")
    data = json.loads(result.read_text())
    data["load"] = (load, os.getloadavg()[0])
    print(f"{data['wall_s']:9.2f}s  (process {time.perf_counter() - started:.1f}s, load {load:.1f})")
    return data


def postgres_problem(address: str) -> str | None:
    """Why the PostgreSQL phase cannot run, or None."""
    try:
        import dagster_postgres  # noqa: F401
        import psycopg2
    except ImportError as exc:
        return f"dagster-postgres is not installed ({exc}); pip install -e '.[postgres]'"
    host, _, port = address.partition(":")
    try:
        psycopg2.connect(host=host, port=int(port or 5432), user="postgres", dbname="postgres").close()
    except Exception as exc:  # noqa: BLE001 (any failure means: no usable server)
        return f"no PostgreSQL server reachable at {address} as user postgres ({str(exc).strip()})"
    return None


def measure_n(n: int, args: argparse.Namespace, workdir: Path, pg: str | None) -> dict[str, dict]:
    print(f"N = {n}:")
    for stale in ("images", "logs", "loop", "ex", "ws", "wsd", "wsp"):  # every phase starts cold
        shutil.rmtree(workdir / f"{stale}-{n}", ignore_errors=True)
    images = workdir / f"images-{n}"
    bp.link_tree(sorted(p for p in (workdir / "src").iterdir() if p.suffix == ".jpg")[:n], images)
    logs, out = workdir / f"logs-{n}", {}
    base = {"images": str(images)}
    out["loop"] = run_child({**base, "phase": "loop", "out": str(workdir / f"loop-{n}")}, logs, "loop")
    out["executor"] = run_child(
        {**base, "phase": "executor", "workspace": str(workdir / f"ex-{n}")}, logs, "executor"
    )
    spec = {**base, "phase": "pipeline", "storage": "batched", "workspace": str(workdir / f"ws-{n}")}
    out["batched cold"] = run_child(spec, logs, "batched-cold")
    out["batched warm"] = run_child(spec, logs, "batched-warm")
    if n <= args.default_max:
        spec = {**base, "phase": "pipeline", "storage": "default", "workspace": str(workdir / f"wsd-{n}")}
        out["default cold"] = run_child(spec, logs, "default-cold", {"DAGSTER_EVENT_BATCH_SIZE": "0"})
    if n <= args.postgres_max and pg is None:
        db = f"bench_{n}_{int(time.time())}"
        spec = {
            **base,
            "phase": "pipeline",
            "storage": "postgres",
            "postgres": args.postgres,
            "db": db,
            "workspace": str(workdir / f"wsp-{n}"),
        }
        out["postgres cold"] = run_child(spec, logs, "postgres-cold", {"DAGSTER_EVENT_BATCH_SIZE": "1000"})
    for key in ("executor", "batched cold", "default cold", "postgres cold"):
        if key in out and out[key]["exported"] != out["loop"]["exported"]:
            raise SystemExit(f"N={n}: the {key} export differs from the plain loop's; see {logs}")
    return out


def measure_scale(count: int, workdir: Path) -> dict:
    print(f"scale: {count} images, Load only:")
    images = generate(workdir / f"scale-src-{count}", count, (16, 12))
    spec = {"phase": "scale", "images": str(images), "workspace": str(workdir / f"scale-ws-{count}")}
    shutil.rmtree(spec["workspace"], ignore_errors=True)
    result = run_child(spec, workdir / "logs-scale", "scale-run")
    result["graphql"] = time_ui_queries(Path(spec["workspace"]), images, workdir / "logs-scale")
    return result


# --- inside a phase's process --------------------------------------------------------------------------------

WORKFLOW_NAME = "bench"
DAGSTER_REGIONS = ("dagster_runs", "dagster_planned", "dagster_store", "dagster_partitions", "dagster_setup")
DEFAULT_YAML = """\
# bench_bookkeeping: Dagster's default storage (edited, so beprepared leaves it alone)
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 1
"""
POSTGRES_YAML = (
    DEFAULT_YAML.replace("default storage", "dagster-postgres")
    + """\
storage:
  postgres:
    postgres_db:
      username: postgres
      hostname: {host}
      port: {port}
      db_name: {db}
      scheme: postgresql+psycopg2
"""
)


def build_workflow(images: Path, workspace: Path):
    from beprepared_dagster import ConvertFormat, FilterByAspectRatio, FilterBySize, Load, Save, Workflow

    chain = Load(images) >> FilterBySize(min_edge=32) >> FilterByAspectRatio(max_aspect=2.5)
    return Workflow(WORKFLOW_NAME, chain >> ConvertFormat("PNG") >> Save, workspace=workspace)


def instrument(prof: Any) -> None:
    """Time regions: beprepared's own work (executor, DuckDB, export) nested in Dagster's calls is excluded
    from Dagster's share by the exclusive-time Profile."""
    import dagster as dg

    from beprepared_dagster.orchestration import assets, discovery, executor, export, runner
    from beprepared_dagster.store import db

    prof.wrap(executor.StageExecutor, "run", "beprepared")
    for owner in (export, assets):  # Save's export, called by the executor phase and by the Save asset
        if hasattr(owner, "run_save"):
            prof.wrap(owner, "run_save", "beprepared")
        else:
            print(f"note: {owner.__name__}.run_save not found; Save's export counts as Dagster time")
    prof.wrap_cm(db.Database, "connect", "beprepared")
    prof.wrap(discovery, "scan_folder", "discovery")
    prof.wrap(runner, "_materialize", "dagster_runs")
    prof.wrap(runner, "open_instance", "dagster_setup")
    prof.wrap(runner, "build_definitions", "dagster_setup")
    # Inside the runs: writing planned events at run creation, and the event log's batch writes (any phase).
    from dagster._core.instance.runs.run_domain import RunDomain
    from dagster._core.storage.event_log import SqliteEventLogStorage
    from dagster._core.storage.event_log.base import EventLogStorage

    from beprepared_dagster.orchestration.event_log import BatchedSqliteEventLogStorage

    prof.wrap(RunDomain, "_log_asset_planned_events", "dagster_planned")
    storages = [EventLogStorage, SqliteEventLogStorage, BatchedSqliteEventLogStorage]
    try:
        from dagster_postgres.event_log import PostgresEventLogStorage

        storages.append(PostgresEventLogStorage)
    except ImportError:
        pass
    for storage in storages:
        for method in ("store_event", "store_event_batch"):
            if method in vars(storage):  # each class's own definition, wrapped once
                prof.wrap(storage, method, "dagster_store")
    prof.wrap(dg.DagsterInstance, "add_dynamic_partitions", "dagster_partitions")
    prof.wrap(dg.DagsterInstance, "get_dynamic_partitions", "dagster_partitions")


def run_loop(images: Path, out: Path) -> dict[str, Any]:
    """The node work of the workflow as a plain loop: no DuckDB, no Dagster."""
    from beprepared_dagster.nodes import imaging

    objects, export = out / "objects", out / "export"
    export.mkdir(parents=True, exist_ok=True)

    def store(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        final = objects / digest[:2] / digest[2:4] / digest
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, final)
        return digest

    kept = 0
    for path in sorted(images.iterdir()):
        data = path.read_bytes()
        store(data)
        info = imaging.probe(data)
        w, h = info["width"], info["height"]
        if min(w, h) < 32 or w / h > 2.5:
            continue
        png, width, height = imaging.convert(data, "PNG", 95)
        pid = store(png)
        (export / f"{path.stem}_{pid[:12]}.png").write_bytes(png)
        props = {"objectid": pid, "original_path": str(path), "width": width, "height": height}
        (export / f"{path.stem}_{pid[:12]}.json").write_text(json.dumps(props, indent=2) + "\n")
        kept += 1
    return {"kept": kept, "export": str(export)}


def run_executor(images: Path, workspace: Path) -> dict[str, Any]:
    """beprepared without Dagster: discovery, each stage's executor, then Save's export."""
    import logging

    from beprepared_dagster.nodes.base import SinkNode
    from beprepared_dagster.orchestration.discovery import discover
    from beprepared_dagster.orchestration.executor import StageExecutor
    from beprepared_dagster.orchestration.export import run_save
    from beprepared_dagster.store.workspace import WorkspaceStore

    log = logging.getLogger("bench")
    workflow = build_workflow(images, workspace)
    store = WorkspaceStore(workflow.workspace_dir)
    keys = discover(store, workflow, set(), log).new_keys
    for stage in workflow.stages:
        if isinstance(stage.node, SinkNode):
            run_save(store, workflow, stage, log)
        elif StageExecutor(store, workflow, log).run(stage, keys).errors:
            raise SystemExit(f"{stage.name}: errors")
    return {"export": str(workspace / "output")}


def write_instance_yaml(spec: dict) -> None:
    home = Path(spec["workspace"]) / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    if spec["storage"] == "default":
        (home / "dagster.yaml").write_text(DEFAULT_YAML)
    elif spec["storage"] == "postgres":
        import psycopg2

        host, _, port = spec["postgres"].partition(":")
        conn = psycopg2.connect(host=host, port=int(port or 5432), user="postgres", dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute(f'CREATE DATABASE "{spec["db"]}"')
        conn.close()
        text = POSTGRES_YAML.format(host=host, port=int(port or 5432), db=spec["db"])
        (home / "dagster.yaml").write_text(text)


def event_counts(spec: dict) -> dict[str, int]:
    query = "SELECT coalesce(dagster_event_type, ''), count(*) FROM event_logs GROUP BY 1"
    if spec.get("storage") == "postgres":
        import psycopg2

        host, _, port = spec["postgres"].partition(":")
        conn = psycopg2.connect(host=host, port=int(port or 5432), user="postgres", dbname=spec["db"])
        try:
            cur = conn.cursor()
            cur.execute("SELECT to_regclass('event_logs')")
            if cur.fetchone()[0] is None:
                return {}
            cur.execute(query)
            return dict(cur.fetchall())
        finally:
            conn.close()
    import sqlite3

    index = Path(spec["workspace"]) / "dagster_home" / "history" / "runs" / "index.db"
    if not index.exists():
        return {}
    conn = sqlite3.connect(str(index))
    try:
        return dict(conn.execute(query))
    finally:
        conn.close()


def run_pipeline(spec: dict) -> dict[str, Any]:
    """`workflow.run()` (discovery, range runs, Save) on the workspace, with the storage asked for."""
    workspace = Path(spec["workspace"])
    if not (workspace / "dagster_home" / "dagster.yaml").exists():
        write_instance_yaml(spec)
    before = event_counts(spec)
    summary = build_workflow(Path(spec["images"]), workspace).run()
    after = event_counts(spec)
    return {
        "runs": len(summary.run_ids),
        "new_images": summary.new_images,
        "events": sum(after.values()) - sum(before.values()),
        "events_by_type": {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)},
        "export": str(workspace / "output"),
    }


def run_scale(spec: dict) -> dict[str, Any]:
    """`Load` alone over many images: one range run of one stage."""
    import dagster as dg

    from beprepared_dagster import Load, Workflow
    from beprepared_dagster.orchestration.instance import open_instance
    from beprepared_dagster.store.workspace import WorkspaceStore

    workspace = Path(spec["workspace"])
    summary = Workflow("scale", Load(Path(spec["images"])), workspace=workspace).run(save=False)
    instance = open_instance(WorkspaceStore(workspace))
    materialized = instance.get_materialized_partitions(dg.AssetKey(["scale", "load"]))
    return {"runs": len(summary.run_ids), "new_images": summary.new_images, "materialized": len(materialized)}


def exported_objects(folder: str | None) -> list[str]:
    if not folder or not Path(folder).is_dir():
        return []
    return sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in Path(folder).glob("*.png"))


def child_main(spec: dict) -> None:
    import logging

    from PIL import Image  # noqa: F401  (imports are not timed)

    from beprepared_dagster.nodes import imaging  # noqa: F401

    if spec["phase"] != "loop":
        import dagster  # noqa: F401

        from beprepared_dagster.orchestration import runner  # noqa: F401
    prof = bp.Profile()
    if spec["phase"] != "loop":
        instrument(prof)
    logging.basicConfig(level=logging.WARNING)
    prof.watch_gc()
    run = {
        "loop": lambda: run_loop(Path(spec["images"]), Path(spec["out"])),
        "executor": lambda: run_executor(Path(spec["images"]), Path(spec["workspace"])),
        "pipeline": lambda: run_pipeline(spec),
        "scale": lambda: run_scale(spec),
    }[spec["phase"]]
    t0 = time.perf_counter()
    with prof.region("other"):
        result: dict[str, Any] = run()
    result["wall_s"] = time.perf_counter() - t0
    result["rss_peak_mib"] = bp.maxrss_mib()
    result["split_s"], result["gc_s"] = prof.excl, prof.gc_s
    if spec["phase"] in ("pipeline", "scale"):
        result["dagster_s"] = sum(prof.excl.get(k, 0.0) for k in DAGSTER_REGIONS)
    result["exported"] = exported_objects(result.pop("export", None))
    result.setdefault("kept", len(result["exported"]))
    Path(spec["result"]).write_text(json.dumps(result))


# --- the Dagster UI's queries, against a real dagster-webserver ----------------------------------------------

UI_QUERIES = {
    "partitionStats": "partitionStats { numMaterialized numPartitions numFailed numMaterializing }",
    "assetPartitionStatuses": "assetPartitionStatuses { __typename ... on DefaultPartitionStatuses "
    "{ materializedPartitions failedPartitions materializingPartitions } }",
    "partitionKeysByDimension": "partitionKeysByDimension { name partitionKeys }",
    "latest materialization": "assetMaterializations(limit: 1) { partition runId metadataEntries { label } }",
}


def time_ui_queries(workspace: Path, images: Path, logs: Path) -> dict[str, Any]:
    """Start dagster-webserver on the workspace and time the asset page's queries (each asked twice)."""
    import requests

    flow = logs / "scale_workflow.py"
    flow.write_text(
        "from beprepared_dagster import *\n"
        f'with Workspace(r"{workspace}", name="scale") as workspace:\n'
        f'    Load(r"{images}")\n'
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "DAGSTER_HOME": str(workspace / "dagster_home"), "BEPREPARED_WORKFLOWS": str(flow)}
    with open(logs / "webserver.log", "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dagster_webserver",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-m",
                "beprepared_dagster.definitions",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url, session = f"http://127.0.0.1:{port}/graphql", requests.Session()
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if session.post(url, json={"query": "{ version }"}, timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"dagster-webserver did not answer; see {logs / 'webserver.log'}")
            time.sleep(0.5)
        return _ask_ui_queries(session, url)
    finally:
        session.close()
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def _ask_ui_queries(session: Any, url: str) -> dict[str, Any]:
    timings, answers = {}, {}
    for name, fields in UI_QUERIES.items():
        query = (
            "query Q($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) { __typename "
            f"... on AssetNode {{ {fields} }} }} }}"
        )
        times = []
        for _ in range(2):
            t = time.perf_counter()
            response = session.post(
                url, json={"query": query, "variables": {"path": ["scale", "load"]}}, timeout=600
            )
            times.append(time.perf_counter() - t)
            body = response.json()
            if body.get("errors"):
                raise SystemExit(f"GraphQL {name}: {body['errors']}")
        node = body["data"]["assetNodeOrError"]
        timings[name] = (times[0], times[1], len(response.content))
        if name == "partitionStats":
            answers.update(node["partitionStats"])
        elif name == "assetPartitionStatuses":
            answers["materialized ranges"] = len(node["assetPartitionStatuses"]["materializedPartitions"])
        elif name == "partitionKeysByDimension":
            answers["partition keys"] = len(node["partitionKeysByDimension"][0]["partitionKeys"])
        else:
            answers["latest materialization has metadata"] = bool(
                node["assetMaterializations"][0]["metadataEntries"]
            )
    return {"queries": timings, "answers": answers}


# --- report ----------------------------------------------------------------------------------------------------


def per(seconds: float, n: int) -> str:
    return f"{seconds / (n * STAGES) * 1000:.3f}"


def report_n(n: int, out: dict[str, dict]) -> list[str]:
    loop, executor = out["loop"]["wall_s"], out["executor"]["wall_s"]
    rows = []
    for label, r in out.items():
        dagster = r.get("dagster_s")
        rows.append(
            [
                label,
                f"{r['wall_s']:.2f}",
                f"{n / r['wall_s']:.0f}",
                f"{dagster:.2f}" if dagster is not None else "-",
                per(dagster, n) if dagster is not None else "-",
                per(r["wall_s"] - executor, n) if dagster is not None else "-",
                per(r["wall_s"] - loop, n) if label != "loop" else "-",
                f"{r['rss_peak_mib']:.0f}",
                r.get("events", "-"),
                r.get("runs", "-"),
                f"{r['load'][0]:.1f}-{r['load'][1]:.1f}",
            ]
        )
    lines = [f"N = {n} images x {STAGES} partitioned stages (+ Save); kept {out['loop']['kept']}", ""]
    lines += bp.fmt_table(
        [
            "phase",
            "wall s",
            "img/s",
            "Dagster s",
            "Dagster ms/(stage,img)",
            "(wall-executor) ms",
            "(wall-loop) ms",
            "peak RSS MiB",
            "events",
            "runs",
            "load avg",
        ],
        rows,
    )
    b = out["batched cold"]
    lines += [
        "",
        "  batched cold split (s): " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(b["split_s"].items())),
        f"  batched cold GC pauses: {b['gc_s']:.2f}s; events by type: {json.dumps(b.get('events_by_type', {}), sort_keys=True)}",
    ]
    if "default cold" in out:
        d = out["default cold"]
        lines.append(
            f"  vs Dagster's default storage, same benchmark run: Dagster overhead {per(b['dagster_s'], n)} vs "
            f"{per(d['dagster_s'], n)} ms per (stage, image) ({d['dagster_s'] / b['dagster_s']:.1f}x less); "
            f"cold wall {b['wall_s']:.1f}s vs {d['wall_s']:.1f}s"
        )
    if "postgres cold" in out:
        p = out["postgres cold"]
        lines.append(
            f"  PostgreSQL (dagster-postgres, DAGSTER_EVENT_BATCH_SIZE=1000): Dagster overhead "
            f"{per(p['dagster_s'], n)} ms per (stage, image); cold wall {p['wall_s']:.1f}s"
        )
    lines.append(
        f"  plain-loop limit: {loop:.2f}s = {n / loop:.0f} img/s; batched cold is {b['wall_s'] / loop:.2f}x the loop"
    )
    return lines


def report_scale(count: int, r: dict) -> list[str]:
    lines = [
        f"Scale: Load over {count} images in one range run: wall {r['wall_s']:.1f}s, Dagster overhead "
        f"{r['dagster_s'] / count * 1000:.3f} ms per image, peak RSS {r['rss_peak_mib']:.0f} MiB, "
        f"{r['materialized']} partitions reported materialized",
        "Dagster UI (dagster-webserver GraphQL) for that asset, seconds, first call then second call:",
    ]
    for name, (cold, warm, size) in r["graphql"]["queries"].items():
        lines.append(f"  {name:<32} {cold:7.2f}  {warm:7.2f}   ({size / 1024:.0f} KiB)")
    lines.append(f"  answers: {json.dumps(r['graphql']['answers'], sort_keys=True)}")
    return lines


def header(args: argparse.Namespace, pg_problem: str | None) -> list[str]:
    v = bp.versions()
    pg = "skipped: " + pg_problem if pg_problem else f"server at {args.postgres}"
    return [
        f"machine: {os.cpu_count()} CPUs ({bp.cpu_model()}), {os.uname().sysname} {os.uname().release}; "
        f"Python {v['python']}, dagster {v['dagster']}, duckdb {v['duckdb']}, Pillow {v['pillow']}",
        f"PostgreSQL phase: {pg}",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument(
        "--default-max", type=int, default=2000, help="largest N measured on Dagster's default storage"
    )
    parser.add_argument(
        "--postgres", default="127.0.0.1:5433", help="HOST:PORT of a PostgreSQL server (user postgres, trust)"
    )
    parser.add_argument("--postgres-max", type=int, default=2000, help="largest N measured on PostgreSQL")
    parser.add_argument(
        "--scale", type=int, default=100_000, help="images for the one-stage scale check (0: skip)"
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep images and workspaces here (default: a temp folder)"
    )
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS-bookkeeping.md")
    parser.add_argument("--no-results", action="store_true", help="print only")
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        child_main(json.loads(args._child))
        return
    workdir = args.workdir.resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="bench-bookkeeping-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    pg = postgres_problem(args.postgres)
    if pg:
        print(f"PostgreSQL phase skipped: {pg}")
    try:
        generate(workdir / "src", max(args.images))
        lines = header(args, pg)
        for n in args.images:
            lines += report_n(n, measure_n(n, args, workdir, pg)) + [""]
        if args.scale:
            lines += report_scale(args.scale, measure_scale(args.scale, workdir))
        lines.append(f"(benchmark took {time.perf_counter() - started:.0f}s)")
        print("\n" + "\n".join(lines))
        if not args.no_results:
            stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
            command = " ".join(["bench/bench_bookkeeping.py"] + sys.argv[1:])
            new = not args.results.exists()
            with open(args.results, "a") as f:
                if new:
                    f.write(
                        "# bench_bookkeeping results\n\nAppended by `bench/bench_bookkeeping.py`; newest last.\n\n"
                    )
                f.write(f"## {stamp}\n\n`{command}`\n\n```\n" + "\n".join(lines) + "\n```\n\n")
            print(f"appended to {args.results}")
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
