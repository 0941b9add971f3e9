"""Benchmark: `ConvertFormat("PNG")` on generated 1600×1200 photos, whole processes, against plain loops.

    .venv/bin/python bench/bench_convert.py [--images 300] [--repeats 2] [--workdir DIR] [--results FILE]

The case a new user tried when issue 12 was filed (300 images, 189 s, one core busy). Phases, each a fresh
process on a fresh workspace:

* project      `Load(src) >> ConvertFormat("PNG") >> Save` (`python flow.py`), default compress_level (1).
* plain-pool   a plain loop doing the same decode + PNG encode at level 1 in a process pool of one worker per
               core (what the original's Downscale did), writing the PNGs to a folder.
* plain-naive  one process, Pillow's default PNG level (6): what a quick script does.

Prints the median wall time, images per second and the CPU use (user + system seconds per wall second: 2.0
means both cores busy), and appends the report to bench/RESULTS-ingest.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

FLOW = textwrap.dedent(
    """
    import sys
    from beprepared_dagster import ConvertFormat, Load, Save, Workspace
    src, ws = sys.argv[1], sys.argv[2]
    with Workspace(ws, name="convert") as w:
        Load(src) >> ConvertFormat("PNG") >> Save
        w.run()
    """
)

PLAIN = textwrap.dedent(
    """
    import os, sys
    from concurrent.futures import ProcessPoolExecutor
    from PIL import Image
    src, dst, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(dst, exist_ok=True)

    def convert(name, level):
        with Image.open(os.path.join(src, name)) as image:
            image.convert("RGB").save(os.path.join(dst, name + ".png"), compress_level=level)

    names = sorted(os.listdir(src))
    if mode == "pool":
        with ProcessPoolExecutor(os.cpu_count()) as pool:
            list(pool.map(convert, names, [1] * len(names)))
    else:
        for name in names:
            convert(name, 6)
    """
)


def make_images(folder: Path, n: int) -> None:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        path = folder / f"photo_{i:04d}.jpg"
        if path.exists():
            continue
        gen = np.random.default_rng(i)
        base = Image.fromarray(gen.integers(0, 255, (12, 16, 3), dtype=np.uint8)).resize(
            (1600, 1200), Image.BICUBIC
        )
        noise = Image.fromarray(gen.integers(0, 40, (1200, 1600, 3), dtype=np.uint8))
        Image.blend(base, noise, 0.15).save(path, quality=85)


def timed(command: list[str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{command} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench_convert")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS-ingest.md")
    args = parser.parse_args()
    src = args.workdir / f"photos-{args.images}"
    print(f"generating {args.images} 1600x1200 JPEGs in {src} (kept between runs)…", flush=True)
    make_images(src, args.images)
    scripts = Path(tempfile.mkdtemp())
    (scripts / "flow.py").write_text(FLOW)
    (scripts / "plain.py").write_text(PLAIN)
    rows: dict[str, list[dict]] = {"project": [], "plain-pool": [], "plain-naive": []}
    for r in range(args.repeats):
        ws, out = args.workdir / "ws", args.workdir / "plain-out"
        for path in (ws, out):
            shutil.rmtree(path, ignore_errors=True)
        rows["project"].append(timed([sys.executable, str(scripts / "flow.py"), str(src), str(ws)]))
        pngs = list((ws / "output").glob("*.png"))
        assert len(pngs) == args.images, f"the project exported {len(pngs)} PNGs, expected {args.images}"
        rows["plain-pool"].append(
            timed([sys.executable, str(scripts / "plain.py"), str(src), str(out), "pool"])
        )
        shutil.rmtree(out, ignore_errors=True)
        rows["plain-naive"].append(
            timed([sys.executable, str(scripts / "plain.py"), str(src), str(out), "naive"])
        )
        print(
            f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]['wall']:.1f}s" for k, v in rows.items()), flush=True
        )
    shutil.rmtree(scripts, ignore_errors=True)
    report = render(args, rows)
    print(report)
    with open(args.results, "a") as f:
        f.write(report + "\n")


def render(args: argparse.Namespace, rows: dict[str, list[dict]]) -> str:
    lines = [
        f'## {_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M} UTC — ConvertFormat("PNG") on {args.images} 1600×1200 JPEGs',
        "",
        f"`bench/bench_convert.py --images {args.images} --repeats {args.repeats}` · {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load average at the end {os.getloadavg()[0]:.1f}",
        "",
        "| run | median wall s | runs | images/s | CPU s per wall s |",
        "|---|---|---|---|---|",
    ]
    for name, runs in rows.items():
        walls = [r["wall"] for r in runs]
        wall = statistics.median(walls)
        use = statistics.median(r["cpu"] / r["wall"] for r in runs)
        lines.append(
            f"| {name} | {wall:.2f} | {', '.join(f'{w:.1f}' for w in walls)} | "
            f"{args.images / wall:.1f} | {use:.2f} |"
        )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
