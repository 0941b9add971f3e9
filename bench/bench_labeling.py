"""Benchmark: how fast the labeling app answers a key press, on real photos of 2-5 megapixels.

    .venv/bin/python bench/bench_labeling.py [--images 210] [--presses 200] [--cadence-ms 250] [--workdir DIR]
    .venv/bin/python bench/bench_labeling.py --pace [--images 110] [--presses 100]   # dwell runs, HumanRank

Photos: the bundled demo wallpapers (or --photos), upscaled to 2-5 MP with a small
per-copy variation, so each of the --images files is a distinct image. Workflow: `Load >> HumanFilter >> Save`,
three times over the same photos (domains cold / warm / flat), automated stages run Dagster-free.

The app runs as its own process (`python -m beprepared_dagster.labeling`); headless Debian chromium presses ↑/↓
through Playwright, 1280x800. Per key press the page records keydown (event.timeStamp) → the new image
decoded → two requestAnimationFrames (what the app itself measures in `window.__bp.paints`), and per label
enqueue → acknowledged (the journal append returned).

Runs (each on its own domain, in a new browser context, so the browser's cache starts empty):
* cold   first sight of these photos: display copies (long edge 1600) are made on demand while the page
         preloads ahead; one key every --cadence-ms (a fast human).
* warm   the display cache is filled; same cadence.
* fast   warm, one key every 100 ms (faster than anyone judges photos).
* flat   warm, keys as fast as Playwright can press them (~100/s): more than the browser can decode, so
         painted latency here measures the backlog, not a human's experience.
* burst  --presses key events dispatched in one task: how fast the outbox gets a burst acknowledged
         (batched appends); no paint figures.

With `--pace`, a person's pace instead (bench/labeling_runs.py): each key is pressed as soon as the
previous image (HumanFilter) or pair (HumanRank) is painted, plus a dwell of 0 or 300 ms; `new` is the first
run on photos that reached the stage the moment the app started (display copies still being made in the
background), the others start once the background copies are made. After the dwell-0 runs, the label sensor
is ticked and its runs executed in process until every label is a Dagster materialization.

This prints figures; it is not a test. The report is appended to bench/RESULTS-labeling.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import logging
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
SAMPLES = ROOT / "beprepared_dagster" / "demo" / "images"  # or --photos: any folder of photos
SEED = 20261125
ORIGINAL = "original beprepared (reference §3, this kind of machine): p50 95 ms, p95 572 ms painted"
WORKFLOWS = """
from beprepared_dagster import *
for name in ("cold", "warm", "fast", "flat", "burst"):
    with Workspace(r"{ws}", name=name) as workspace:
        Load(r"{photos}") >> HumanFilter(domain=name) >> Save
"""
PACE_WORKFLOWS = """
from beprepared_dagster import *
with Workspace(r"{ws}", name="new") as workspace:
    Load(r"{fresh}") >> HumanFilter(domain="new") >> Save
for name in ("filter0", "filter300"):
    with Workspace(r"{ws}", name=name) as workspace:
        Load(r"{photos}") >> HumanFilter(domain=name) >> Save
for name in ("rank0", "rank300"):
    with Workspace(r"{ws}", name=name) as workspace:
        Load(r"{photos}") >> HumanRank(domain=name, comparisons_per_image=2) >> Save
"""


def make_photos(source: Path, target: Path, count: int, seed: int = SEED) -> list[Path]:
    """`count` distinct JPEGs of 2-5 MP from the sample photos (cached in `target`)."""
    from PIL import Image, ImageEnhance, ImageOps

    target.mkdir(parents=True, exist_ok=True)
    samples = sorted(
        p for p in source.iterdir() if p.suffix.lower() in (".jpg", ".png") and p.stat().st_size > 30000
    )
    rng = random.Random(seed)
    made = []
    for i in range(count):
        path = target / f"photo_{i:04d}.jpg"
        made.append(path)
        if path.exists():
            continue
        with Image.open(samples[i % len(samples)]) as src:
            image = ImageOps.exif_transpose(src).convert("RGB")
        megapixels = rng.uniform(2.0, 5.0)
        scale = (megapixels * 1e6 / (image.width * image.height)) ** 0.5
        image = image.resize((int(image.width * scale), int(image.height * scale)), Image.Resampling.BICUBIC)
        if (i // len(samples)) % 2:
            image = ImageOps.mirror(image)
        image = ImageEnhance.Brightness(image).enhance(0.85 + 0.3 * rng.random())
        image.save(path, "JPEG", quality=90)
    return made


def build_workspace(workdir: Path, photos: Path, template: str = WORKFLOWS, **folders: Path) -> Path:
    """The workflow file; images discovered, Load run and insertion order recorded for each workflow."""
    from beprepared_dagster.labeling.__main__ import load_workflow_file
    from beprepared_dagster.orchestration.discovery import discover
    from beprepared_dagster.orchestration.executor import StageExecutor
    from beprepared_dagster.store import order
    from beprepared_dagster.store.workspace import WorkspaceStore

    ws = workdir / "workspace"
    shutil.rmtree(ws, ignore_errors=True)
    file = workdir / "bench_labeling_workflows.py"
    file.write_text(template.format(ws=ws, photos=photos, **folders))
    log = logging.getLogger("bench")
    for workflow in load_workflow_file(file):
        store = WorkspaceStore(workflow.workspace_dir)
        keys = discover(store, workflow, set(), log).new_keys
        StageExecutor(store, workflow, log).run(workflow.stages[0], keys)
        with store.db.connect() as conn:
            order.append_order(conn, workflow.name, keys)
    return file


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(file: Path, port: int, log: Path) -> subprocess.Popen:
    import requests

    cmd = [sys.executable, "-m", "beprepared_dagster.labeling", "--port", str(port), str(file)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/beprepared/health", timeout=1).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit(f"the app did not start; see {log}")


def run(browser: Any, url: str, tab: str, presses: int, cadence_ms: float | None) -> dict[str, Any]:
    """Press ↑/↓ `presses` times (every `cadence_ms`; flat out when 0; dispatched in one task when None);
    returns the page's measurements."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{url}?tab={tab}")
    page.wait_for_selector("#bp-labeler .bp-frame img.bp-img", timeout=60000)
    page.wait_for_function("window.__bp.paints !== undefined")
    time.sleep(1.0)  # let the first preloads land, as a person would look at the first image
    rng = random.Random(SEED)
    keys = ["ArrowUp" if rng.random() < 0.7 else "ArrowDown" for _ in range(presses)]
    started = time.perf_counter()
    if cadence_ms is None:
        page.evaluate(BURST, keys)
    for key in keys if cadence_ms is not None else []:
        page.keyboard.press(key)
        if cadence_ms:
            page.wait_for_timeout(cadence_ms)
    page.wait_for_function("window.__bp.state().unsaved === 0", timeout=120000)
    if cadence_ms is not None:
        done = f"window.__bp.paints.length + window.__bp.superseded.count >= {presses}"
        page.wait_for_function(done, timeout=120000)
    elapsed = time.perf_counter() - started
    data = page.evaluate(
        "({paints: window.__bp.paints, superseded: window.__bp.superseded.count,"
        " acked: window.__bp.outbox.acked.map(a => [a.t, a.ta])})"
    )
    context.close()
    acks = data["acked"]
    first_t, last_ta = min(a[0] for a in acks), max(a[1] for a in acks)
    return {
        "presses": presses,
        "cadence": cadence_text(cadence_ms),
        "paints": data["paints"][:presses] if cadence_ms is not None else [],
        "superseded": data["superseded"] if cadence_ms is not None else 0,
        "ack_ms": [ta - t for t, ta in acks],
        "acked": len(acks),
        "saves_per_s": len(acks) / ((last_ta - first_t) / 1000),
        "elapsed": elapsed,
    }


BURST = """keys => { for (const key of keys)
    document.dispatchEvent(new KeyboardEvent('keydown', {key, bubbles: true, cancelable: true})); }"""


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def describe(name: str, r: dict[str, Any], cadence: str) -> str:
    p, a = r["paints"], r["ack_ms"]
    paint = (
        f"{statistics.median(p):>9.1f}  {pct(p, 95):>9.1f}  {max(p):>9.1f}"
        if p
        else f"{'-':>9}  {'-':>9}  {'-':>9}"
    )
    return (
        f"{name:<5} {cadence:>9}  {r['presses']:>7}  {len(p):>7}  {paint}"
        f"  {r['acked']:>5}  {statistics.median(a):>8.1f}  {pct(a, 95):>8.1f}  {r['saves_per_s']:>8.1f}"
    )


def cadence_text(cadence_ms: float | None) -> str:
    return "one task" if cadence_ms is None else "flat out" if cadence_ms == 0 else f"{cadence_ms:g} ms"


def prepare(args: argparse.Namespace) -> list[float]:
    """Make (or reuse) the photos; returns their sizes in megapixels."""
    from PIL import Image

    t = time.perf_counter()
    photos = make_photos(args.photos, args.workdir / "photos", args.images)
    sizes = []
    for path in photos:
        with Image.open(path) as im:
            sizes.append(im.width * im.height / 1e6)
    print(
        f"{len(photos)} photos, {min(sizes):.1f}-{max(sizes):.1f} MP ({time.perf_counter() - t:.0f}s)",
        flush=True,
    )
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=210)
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--cadence-ms", type=float, default=250)
    parser.add_argument("--photos", type=Path, default=SAMPLES)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench_labeling")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS-labeling.md")
    parser.add_argument(
        "--pace", action="store_true", help="dwell 0/300 ms runs, HumanRank, materializations"
    )
    args = parser.parse_args()
    if args.images <= args.presses:
        parser.error("--images must exceed --presses (the last press must still show an image)")
    from playwright.sync_api import sync_playwright

    if args.pace:
        from labeling_runs import main_pace

        return main_pace(args, prepare(args), sys.modules[__name__])
    sizes = prepare(args)
    file = build_workspace(args.workdir, args.workdir / "photos")
    port = free_port()
    app = start_app(file, port, args.workdir / "app.log")
    url = f"http://127.0.0.1:{port}/"
    results = {}
    try:
        with sync_playwright() as p:
            exe = shutil.which("chromium") or shutil.which("chromium-browser")
            browser = p.chromium.launch(
                executable_path=exe, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            plan = {"cold": args.cadence_ms, "warm": args.cadence_ms, "fast": 100, "flat": 0, "burst": None}
            for name, cadence in plan.items():
                results[name] = run(browser, url, f"{name}/human_filter", args.presses, cadence)
                print(describe(name, results[name], results[name]["cadence"]), flush=True)
            version = browser.version
            browser.close()
    finally:
        os.killpg(app.pid, signal.SIGTERM)
        app.wait(timeout=30)
    report = render_report(args, sizes, results, version)
    print(report)
    with open(args.results, "a") as f:
        f.write(report + "\n")
    return 0


def render_report(args: argparse.Namespace, sizes: list[float], results: dict, chromium: str) -> str:
    import gradio

    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        "run   cadence    presses  painted  paint p50  paint p95  paint max  acked  ack p50   ack p95   saves/s\n"
        "----- ---------  -------  -------  ---------  ---------  ---------  -----  -------   -------   -------"
    )
    rows = [describe(k, r, r["cadence"]) for k, r in results.items()]
    return "\n".join(
        [
            f"\n## {now} — {args.presses} presses, {args.images} photos of {min(sizes):.1f}-{max(sizes):.1f} MP\n",
            f"`bench/bench_labeling.py --images {args.images} --presses {args.presses} --cadence-ms {args.cadence_ms:g}`\n",
            "```",
            f"machine: {os.cpu_count()} CPUs, {platform.system()} {platform.release()}; Python {platform.python_version()}, "
            f"gradio {gradio.__version__}, chromium {chromium} (headless, 1280x800)",
            header,
            *rows,
            "```",
            "paint = keydown → next image decoded → 2 animation frames (ms), over the images still on screen when "
            "they painted (painted < presses: the key after came first); ack = label enqueued → journal append "
            "returned (ms); saves/s = acknowledged labels / (last ack − first enqueue).",
            ORIGINAL,
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
