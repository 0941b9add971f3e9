"""Benchmark: Downscale and FuzzyDedupe node throughput and memory on real-looking photos.

    .venv/bin/python bench/bench_nodes.py [--images 2000] [--photos DIR] [--workdir DIR] [--png-images 500]
        [--results FILE]

The node methods are called directly (`process` in TransformNode batches of 64, `features` in the executor's
feature batches of 64, `decide` once), on a real object store; no DuckDB, no Dagster. The data set is made
once in `--workdir` (reused when present): photos from `--photos` (default: the bundled demo images)
cropped, resized to a 1400-2200 px long edge, colour-jittered, given film grain and saved as JPEG q88-95, so
each is a few hundred KB; every 10th image is a half-size q75 re-encode of the one before (a near-duplicate
FuzzyDedupe should drop).

Cases, each in its own child process so `ru_maxrss` (peak resident memory, C allocations included: Pillow
image buffers, numpy) is that case's own; the figure after imports is shown too. A second, traced pass gives
the tracemalloc peak (Python allocations only) unless `--no-traced-pass`.

* downscale-jpeg  Downscale(max_edge=1024, format="JPEG") over all images.
* downscale-png   Downscale(max_edge=1024) (the original's default PNG output) over the first --png-images.
* fuzzy-features  FuzzyDedupe().features: decode at reduced scale + phash, over all images.
* fuzzy-decide    FuzzyDedupe().decide on all images with their hashes given (what a re-decision costs once
                  the executor has cached the hashes), then on 20,000 and 100,000 synthetic hashes.

This prints figures; it is not a test. The report is appended to bench/RESULTS-nodes.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SEED = 20241125
DEMO_IMAGES = ROOT / "beprepared_dagster" / "demo" / "images"  # or --photos: any folder of photos
BATCH = 64


# --- data set ------------------------------------------------------------------------------------------------


def _sources(folder: Path) -> list[Path]:
    found = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    if not found:
        raise SystemExit(f"no source photos (.jpg, .jpeg, .png, .webp) in {folder}")
    return found


def _make_one(args: tuple[int, str, str]) -> int:
    index, source, target = args
    from PIL import Image, ImageEnhance

    rng = random.Random(SEED + index)
    image = Image.open(source).convert("RGB")
    if index % 10 == 9:  # a near-duplicate of the previous image
        previous = Image.open(Path(target).with_name(f"img_{index - 1:05d}.jpg"))
        previous.resize((previous.width // 2, previous.height // 2), Image.Resampling.LANCZOS).save(
            target, quality=75
        )
        return os.path.getsize(target)
    w, h = image.size
    share = rng.uniform(0.6, 1.0)
    cw, ch = int(w * share), int(h * rng.uniform(max(0.6, share - 0.2), 1.0))
    left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
    image = image.crop((left, top, left + cw, top + ch))
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    edge = rng.randint(1400, 2200)
    scale = edge / max(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
    image = ImageEnhance.Color(image).enhance(rng.uniform(0.7, 1.3))
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.85, 1.15))
    grain = Image.effect_noise(image.size, rng.uniform(6, 14)).convert("RGB")
    image = Image.blend(image, grain, 0.06)
    image.save(target, quality=rng.randint(88, 95))
    return os.path.getsize(target)


def make_dataset(folder: Path, count: int, photos: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"img_{i:05d}.jpg" for i in range(count)]
    if all(p.is_file() for p in paths):
        return paths
    sources = _sources(photos)
    started = time.perf_counter()
    jobs = [(i, str(sources[i % len(sources)]), str(p)) for i, p in enumerate(paths)]
    # Originals first, then their near-duplicates (which read the image before them).
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(_make_one, [j for j in jobs if j[0] % 10 != 9], chunksize=8))
        list(pool.map(_make_one, [j for j in jobs if j[0] % 10 == 9], chunksize=8))
    print(f"made {count} images in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    return paths


# --- one case, in a child process -------------------------------------------------------------------------------


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load(paths: list[Path], ctx: Any) -> list[Any]:
    from beprepared_dagster.nodes import Image, imaging

    images = []
    for path in paths:
        data = path.read_bytes()
        object_id = ctx.objects.put_bytes(data)
        images.append(
            Image(
                {
                    "image_id": object_id,
                    "objectid": object_id,
                    "original_path": str(path),
                    **imaging.probe(data),
                }
            )
        )
    return images


def _timed(work: Any, traced: bool) -> tuple[float, float | None, Any]:
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20 if traced else None
    if traced:
        tracemalloc.stop()
    return seconds, peak, result


def _synthetic(count: int) -> list[Any]:
    from beprepared_dagster.nodes import Image

    rng = random.Random(SEED)
    images = []
    for n in range(count):
        value = rng.getrandbits(64) if n % 10 != 9 else images[-1]["_raw"] ^ (1 << rng.randrange(64))
        images.append(
            Image(
                {
                    "image_id": f"{n:064x}",
                    "objectid": f"{n:064x}",
                    "width": 1000 + n % 7,
                    "height": 800,
                    "phash": f"{value:016x}",
                    "_raw": value,
                }
            )
        )
    return images


def _downscale(images: list[Any], ctx: Any, case: str, traced: bool) -> dict[str, Any]:
    from beprepared_dagster.nodes import Downscale

    node = Downscale(max_edge=1024, format="JPEG" if case == "downscale-jpeg" else "PNG")

    def work() -> int:
        return sum(len(node.process(images[i : i + BATCH], ctx)) for i in range(0, len(images), BATCH))

    seconds, peak, done = _timed(work, traced)
    return {"images": done, "seconds": seconds, "tracemalloc": peak}


def _features(images: list[Any], ctx: Any, case: str, traced: bool) -> dict[str, Any]:
    from beprepared_dagster.nodes import FuzzyDedupe

    node = FuzzyDedupe()

    def work() -> list[dict]:
        return [f for i in range(0, len(images), BATCH) for f in node.features(images[i : i + BATCH], ctx)]

    seconds, peak, done = _timed(work, traced)
    return {"images": len(done), "seconds": seconds, "tracemalloc": peak}


def _decide(images: list[Any], ctx: Any, case: str, traced: bool) -> dict[str, Any]:
    from beprepared_dagster.nodes import FuzzyDedupe

    node = FuzzyDedupe()
    hashed = [i.with_props(**f) for i, f in zip(images, node.features(images, ctx), strict=True)]
    seconds, peak, outcomes = _timed(lambda: node.decide(hashed, ctx), traced)
    result = {"images": len(hashed), "seconds": seconds, "tracemalloc": peak}
    result["dropped"] = sum(not o.kept for o in outcomes)
    result["rss_photos"] = _rss_mib()  # ru_maxrss only grows: the synthetic runs below would hide this
    for size in (20_000, 100_000):
        synthetic = _synthetic(size)
        s, p, out = _timed(
            lambda synthetic=synthetic: FuzzyDedupe(debug_html=None).decide(synthetic, ctx), traced
        )
        result[f"synthetic_{size}"] = {
            "rss": _rss_mib(),
            "seconds": s,
            "tracemalloc": p,
            "dropped": sum(not o.kept for o in out),
        }
    return result


CASES = {
    "downscale-jpeg": _downscale,
    "downscale-png": _downscale,
    "fuzzy-features": _features,
    "fuzzy-decide": _decide,
}


def run_case(case: str, folder: Path, count: int, traced: bool) -> dict[str, Any]:
    from beprepared_dagster.nodes import NodeContext
    from beprepared_dagster.store.objects import ObjectStore

    paths = sorted(folder.glob("img_*.jpg"))[:count]
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        ctx = NodeContext(ObjectStore(Path(tmp) / "objects"), logging.getLogger("bench"), Path(tmp) / "debug")
        images = _load(paths, ctx)
        import imagehash  # noqa: F401  (imported before measuring: imports are not the node's work)
        import numpy  # noqa: F401

        result: dict[str, Any] = {"case": case, "rss_start": _rss_mib()}
        result.update(CASES[case](images, ctx, case, traced))
        result["rss_peak"] = _rss_mib()
        result["load"] = os.getloadavg()[0]  # other processes on the machine skew the figures: show it
        result["mb"] = sum(p.stat().st_size for p in paths) / 2**20
    return result


# --- driver ------------------------------------------------------------------------------------------------------


def _child(case: str, args: argparse.Namespace, traced: bool, count: int) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--case",
        case,
        "--workdir",
        str(args.workdir),
        "--images",
        str(args.images),
        "--photos",
        str(args.photos),
        "--count",
        str(count),
    ]
    if traced:
        command.append("--traced")
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(output.strip().splitlines()[-1])


def report(args: argparse.Namespace, results: list[tuple[dict, dict | None]]) -> str:
    import numpy
    import PIL

    lines = [
        f"N = {args.images} photos ({results[0][0]['mb']:.0f} MiB, {results[0][0]['mb'] * 1024 / args.images:.0f} KiB each on average; "
        f"1400-2200 px long edge, every 10th a half-size near-duplicate)",
        f"machine: {os.cpu_count()} CPUs, {platform.platform()}; Python {platform.python_version()}, Pillow {PIL.__version__}, numpy {numpy.__version__}",
        "one process, one core per case (nodes run in the run's process); load avg = 1-minute load at the end of the case",
        "",
        "case              images  wall s   img/s  maxrss MiB start→peak  tracemalloc peak MiB  load avg",
        "----------------  ------  ------  ------  ---------------------  --------------------  --------",
    ]
    for timed, traced in results:
        peak = f"{traced['tracemalloc']:.1f}" if traced else "-"
        rss = timed.get("rss_photos", timed["rss_peak"])
        lines.append(
            f"{timed['case']:<16}  {timed['images']:>6}  {timed['seconds']:>6.2f}  {timed['images'] / timed['seconds']:>6.1f}  "
            f"{timed['rss_start']:>8.0f} → {rss:<11.0f}  {peak:>20}  {timed.get('load', 0):>8.1f}"
        )
    decide, decide_traced = next((t, tr) for t, tr in results if t["case"] == "fuzzy-decide")
    lines += [
        "",
        f"fuzzy-decide on the photos: {decide['dropped']} of {decide['images']} dropped as near-duplicates (phash, threshold 0.9).",
    ]
    for size in (20_000, 100_000):
        s = decide[f"synthetic_{size}"]
        traced = (
            f", tracemalloc peak {decide_traced[f'synthetic_{size}']['tracemalloc']:.0f} MiB"
            if decide_traced
            else ""
        )
        lines.append(
            f"fuzzy-decide on {size:,} synthetic hashes (10% one-bit copies): {s['seconds']:.2f}s, "
            f"{s['dropped']} dropped; process maxrss {s['rss']:.0f} MiB{traced}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--photos", type=Path, default=DEMO_IMAGES, help="source photos (default: demo's)")
    parser.add_argument("--png-images", type=int, default=500)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench_nodes")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS-nodes.md")
    parser.add_argument("--no-traced-pass", action="store_true")
    parser.add_argument("--case")
    parser.add_argument("--count", type=int)
    parser.add_argument("--traced", action="store_true")
    args = parser.parse_args()
    # The generated set is reused per source folder and size.
    folder = args.workdir / f"photos_{args.images}_{args.photos.resolve().name}"
    if args.case:  # child
        print(json.dumps(run_case(args.case, folder, args.count or args.images, args.traced)))
        return
    make_dataset(folder, args.images, args.photos)
    results = []
    for case in ("downscale-jpeg", "downscale-png", "fuzzy-features", "fuzzy-decide"):
        count = args.png_images if case == "downscale-png" else args.images
        timed = _child(case, args, False, count)
        traced = None if args.no_traced_pass else _child(case, args, True, count)
        print(f"{case}: {timed['images']} images in {timed['seconds']:.1f}s", file=sys.stderr)
        results.append((timed, traced))
    text = report(args, results)
    print(text)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join(["bench/bench_nodes.py", *sys.argv[1:]])
    if not args.results.exists():
        args.results.write_text("# bench_nodes results\n\nAppended by `bench/bench_nodes.py`; newest last.\n")
    with args.results.open("a") as f:
        f.write(f"\n## {stamp} — N={args.images}\n\n`{command}`\n\n```\n{text}\n```\n")


if __name__ == "__main__":
    main()
