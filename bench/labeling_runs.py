"""Runs of bench_labeling.py that follow a person's pace: press, wait until the next image (or pair) is
painted, dwell, press again; and how long until every label is a Dagster materialization.

The materialization time is measured as Dagster's daemon would do it, in this process: the stage's label
sensor is evaluated on the workspace's real Dagster instance and each run it requests is executed in
process, until the sensor has nothing left to apply. It starts at the last acknowledged label and does not
include the wait for the daemon's next tick (`BEPREPARED_LABEL_SENSOR_INTERVAL`, 5 s by default).
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

KEYS = {
    "filter": ["ArrowUp", "ArrowUp", "ArrowDown"],
    "rank": ["ArrowLeft", "ArrowRight", "ArrowLeft", "ArrowDown"],
}


def run_dwell(browser: Any, url: str, tab: str, kind: str, presses: int, dwell_ms: float, seed: int) -> dict:
    """Press `presses` keys, each as soon as the previous one's image painted plus `dwell_ms`."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{url}?tab={tab}")
    page.wait_for_selector("#bp-labeler .bp-frame img.bp-img", timeout=120000)
    page.wait_for_function("window.__bp.paints !== undefined")
    page.wait_for_timeout(1000)  # the first preloads land while the person looks at the first image
    rng = random.Random(seed)
    keys = [rng.choice(KEYS[kind]) for _ in range(presses)]
    started = time.perf_counter()
    for i, key in enumerate(keys):
        page.keyboard.press(key)
        page.wait_for_function(
            f"window.__bp.paints.length + window.__bp.superseded.count >= {i + 1}", timeout=60000
        )
        if dwell_ms:
            page.wait_for_timeout(dwell_ms)
    page.wait_for_function("window.__bp.state().unsaved === 0", timeout=120000)
    elapsed = time.perf_counter() - started
    data = page.evaluate(
        "({paints: window.__bp.paints, superseded: window.__bp.superseded.count,"
        " acked: window.__bp.outbox.acked.map(a => [a.t, a.ta])})"
    )
    last_ack = time.time()  # acknowledged by now; the page's clock is not this one
    context.close()
    acks = data["acked"]
    first_t, last_ta = min(a[0] for a in acks), max(a[1] for a in acks)
    return {
        "presses": presses,
        "cadence": f"dwell {dwell_ms:g}",
        "paints": data["paints"][:presses],
        "superseded": data["superseded"],
        "ack_ms": [ta - t for t, ta in acks],
        "acked": len(acks),
        "saves_per_s": len(acks) / max(1e-3, (last_ta - first_t) / 1000),
        "elapsed": elapsed,
        "last_ack": last_ack,
    }


def register_partitions(workspace: Path, workflows: list[Any]) -> Any:
    """The workspace's Dagster instance, with every workflow's images as its dynamic partitions."""
    from beprepared_dagster.orchestration.instance import ensure_dagster_home, open_instance
    from beprepared_dagster.orchestration.partitions import partitions_name
    from beprepared_dagster.store import order
    from beprepared_dagster.store.workspace import WorkspaceStore

    store = WorkspaceStore(workspace)
    ensure_dagster_home(store)
    instance = open_instance(store)
    for workflow in workflows:
        with store.db.connect() as conn:
            keys = order.ordered_ids(conn, workflow.name)
        instance.add_dynamic_partitions(partitions_name(workflow), keys)
    return instance


def time_to_materialized(instance: Any, workflow: Any, stage: str, since: float) -> dict[str, Any]:
    """Tick the stage's label sensor and execute what it requests until nothing is left; seconds from `since`
    (the last acknowledged label), runs launched, partitions of the stage materialized."""
    import dagster as dg

    from beprepared_dagster.orchestration.defs import build_definitions

    defs = build_definitions([workflow])
    sensor = defs.get_sensor_def(f"{workflow.name}_{stage}_labels")
    assets = list(defs.assets)
    cursor, runs = None, 0
    while True:
        result = sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
        requests = getattr(result, "run_requests", None) or []
        cursor = getattr(result, "cursor", cursor)
        if not requests:
            break
        for request in requests:
            ok = dg.materialize(
                assets, selection=request.asset_selection, instance=instance, tags=request.tags
            )
            assert ok.success, f"run for {request.tags} failed"
            runs += 1
    key = dg.AssetKey([workflow.name, stage])
    return {
        "seconds": time.time() - since,
        "runs": runs,
        "materialized": len(instance.get_materialized_partitions(key)),
    }


def _copies_made(workspace: Path) -> int:
    root = workspace / "cache" / "display"
    return (
        sum(1 for p in root.rglob("*") if p.is_file() and not p.name.startswith(".tmp"))
        if root.exists()
        else 0
    )


def main_pace(args: Any, sizes: list[float], bench: Any) -> int:
    """The `--pace` suite: new photos at dwell 0, then HumanFilter and HumanRank at dwell 0 and 300 ms."""
    import os
    import shutil
    import signal

    from playwright.sync_api import sync_playwright

    from beprepared_dagster.labeling.__main__ import load_workflow_file

    fresh = args.workdir / "photos_fresh"
    bench.make_photos(args.photos, fresh, args.images, seed=bench.SEED + 1)
    file = bench.build_workspace(args.workdir, args.workdir / "photos", bench.PACE_WORKFLOWS, fresh=fresh)
    workflows = {w.name: w for w in load_workflow_file(file)}
    workspace = args.workdir / "workspace"
    instance = register_partitions(workspace, list(workflows.values()))
    port = bench.free_port()
    started = time.perf_counter()
    app = bench.start_app(file, port, args.workdir / "app.log")
    url = f"http://127.0.0.1:{port}/"
    results: dict[str, dict] = {}
    made: dict[str, dict] = {}
    try:
        with sync_playwright() as p:
            exe = shutil.which("chromium") or shutil.which("chromium-browser")
            browser = p.chromium.launch(
                executable_path=exe, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            results["new"] = run_dwell(
                browser, url, "new/human_filter", "filter", args.presses, 0, bench.SEED
            )
            print(bench.describe("new", results["new"], "dwell 0"), flush=True)
            deadline = time.monotonic() + 900
            while _copies_made(workspace) < 2 * args.images and time.monotonic() < deadline:
                time.sleep(1)
            prefetch_s = time.perf_counter() - started
            print(f"background display copies: {_copies_made(workspace)} in {prefetch_s:.0f}s", flush=True)
            for name, kind, dwell in [
                ("filter0", "filter", 0),
                ("filter300", "filter", 300),
                ("rank0", "rank", 0),
                ("rank300", "rank", 300),
            ]:
                stage = "human_filter" if kind == "filter" else "human_rank"
                results[name] = run_dwell(
                    browser, url, f"{name}/{stage}", kind, args.presses, dwell, bench.SEED
                )
                print(bench.describe(name[:9], results[name], f"dwell {dwell}"), flush=True)
                if dwell == 0:
                    made[name] = time_to_materialized(
                        instance, workflows[name], stage, results[name]["last_ack"]
                    )
                    print(f"  {name}: {made[name]}", flush=True)
            version = browser.version
            browser.close()
    finally:
        os.killpg(app.pid, signal.SIGTERM)
        app.wait(timeout=30)
    report = render_pace(args, sizes, results, made, prefetch_s, version, bench)
    print(report)
    with open(args.results, "a") as f:
        f.write(report + "\n")
    return 0


def render_pace(
    args: Any, sizes: list[float], results: dict, made: dict, prefetch_s: float, chromium: str, bench: Any
) -> str:
    import datetime as dt
    import os
    import platform

    import gradio

    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        "run        pace      presses  painted  paint p50  paint p95  paint max  acked  ack p50   ack p95   saves/s\n"
        "---------  --------  -------  -------  ---------  ---------  ---------  -----  -------   -------   -------"
    )
    rows = [
        bench.describe(name.ljust(9), r, r["cadence"]).replace(name + " ", name.ljust(9) + " ", 1)
        for name, r in results.items()
    ]
    materialized = [
        f"{name}: every label a materialization {m['seconds']:.1f} s after the last acknowledged one "
        f"({m['runs']} run(s), {m['materialized']} partitions of the stage materialized)"
        for name, m in made.items()
    ]
    return "\n".join(
        [
            f"\n## {now} — pace: {args.presses} presses, {args.images} photos of {min(sizes):.1f}-{max(sizes):.1f} MP\n",
            f"`bench/bench_labeling.py --pace --images {args.images} --presses {args.presses}`\n",
            "```",
            f"machine: {os.cpu_count()} CPUs, {platform.system()} {platform.release()}; Python {platform.python_version()}, "
            f"gradio {gradio.__version__}, chromium {chromium} (headless, 1280x800)",
            header,
            *rows,
            f"background display copies of {2 * args.images} photos done {prefetch_s:.0f} s after the app started",
            *materialized,
            "```",
            "paint = keydown → next image (HumanFilter) or both images of the next pair (HumanRank) decoded → 2 "
            "animation frames (ms); the next key is pressed once it painted, plus the dwell. `new`: photos that "
            "reached the stage when the app started. Materialization: label sensor ticked and its runs executed "
            "in process (the daemon's tick interval, 5 s by default, comes on top).",
        ]
    )
