"""Benchmark: WDTagger and NudeNet stages against a plain loop of the same library calls, on the CPU.

    .venv/bin/python bench/bench_tagging.py [--images 192] [--batch 32] [--results FILE]

- WD tagger: the tiny ONNX tagger of the tests (64 px input, so the model costs almost nothing and the figures
  show decoding, preprocessing and bookkeeping). Plain loop: one onnxruntime session, then per batch PIL
  open + the same pad/resize/BGR preprocessing + `session.run`, thresholds applied; nothing stored.
- NudeNet: the real 320 px detector that ships in the `nudenet` wheel. Plain loops: `NudeDetector().detect`
  per file (its documented call) and `detect_batch` over the same batch size; nothing stored.
- Ours: `StageExecutor.run` of the stage on the same images (DuckDB reads, cache lookups, model resolve and
  load, decoding on the runtime's thread pool, per-batch writes), then again with every image cached.

Loading is counted on both sides. Images are 512x384 JPEGs, decoded every time. Prints figures; it is not a
test. Results are appended to bench/RESULTS-tagging.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
log = logging.getLogger("bench")


def make_images(folder: Path, count: int) -> list[Path]:
    from beprepared_dagster_tests.conftest import make_image

    return [make_image(folder / f"img_{i:04d}.jpg", 512, 384, seed=i) for i in range(count)]


def wd_plain_loop(model_dir: Path, paths: list[Path], batch: int) -> float:
    import numpy as np
    import onnxruntime
    from PIL import Image

    started = time.perf_counter()
    session = onnxruntime.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    name, size = session.get_inputs()[0].name, session.get_inputs()[0].shape[1]
    for start in range(0, len(paths), batch):
        arrays = []
        for path in paths[start : start + batch]:
            image = Image.open(path).convert("RGB")
            side = max(image.size)
            canvas = Image.new("RGB", (side, side), (255, 255, 255))
            canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
            canvas = canvas.resize((size, size), Image.Resampling.BICUBIC)
            arrays.append(np.asarray(canvas, dtype=np.float32)[:, :, ::-1])
        probs = session.run(None, {name: np.stack(arrays)})[0]
        [np.flatnonzero(row >= 0.35) for row in probs]
    return time.perf_counter() - started


def nudenet_plain_loops(paths: list[Path], batch: int) -> tuple[float, float]:
    from nudenet import NudeDetector

    started = time.perf_counter()
    detector = NudeDetector()
    for path in paths:
        detector.detect(str(path))
    one = time.perf_counter() - started
    started = time.perf_counter()
    NudeDetector().detect_batch([str(p) for p in paths], batch_size=batch)
    return one, time.perf_counter() - started


def stage_times(node, photos: Path, ws: Path) -> tuple[float, float]:
    from beprepared_dagster import Load, Save, Workflow
    from beprepared_dagster.orchestration.discovery import discover
    from beprepared_dagster.orchestration.executor import StageExecutor
    from beprepared_dagster.store.workspace import WorkspaceStore

    workflow = Workflow("bench", Load(photos) >> node >> Save, workspace=ws)
    store = WorkspaceStore(ws)
    keys = discover(store, workflow, set(), log).new_keys
    executor = StageExecutor(store, workflow, log)
    executor.run(workflow.stages[0], keys)
    stage = workflow.stages[1]
    started = time.perf_counter()
    executor.run(stage, keys)
    cold = time.perf_counter() - started
    started = time.perf_counter()
    executor.run(stage, keys)
    return cold, time.perf_counter() - started


def row(label: str, seconds: float, n: int) -> str:
    return f"| {label} | {seconds:.2f} | {n / seconds:.1f} | {1000 * seconds / n:.2f} ms |"


def bench(args: argparse.Namespace) -> list[str]:
    import onnxruntime

    from beprepared_dagster import NudeNet, WDTagger
    from beprepared_dagster_tests.tiny_models.onnx_tagger import build_tiny_wd_tagger

    work = Path(tempfile.mkdtemp(prefix="bench-tagging-"))
    model_dir = build_tiny_wd_tagger(work / "tiny-wd")
    paths = make_images(work / "photos", args.images)
    n, batch = len(paths), args.batch
    wd_plain_loop(model_dir, paths[:batch], batch)  # warm-up: first-call costs, file cache
    wd_plain = wd_plain_loop(model_dir, paths, batch)
    wd_cold, wd_warm = stage_times(
        WDTagger(model=str(model_dir), batch_size=batch), work / "photos", work / "ws1"
    )
    nn_one, nn_batch = nudenet_plain_loops(paths, batch)
    nn_cold, nn_warm = stage_times(NudeNet(batch_size=batch), work / "photos", work / "ws2")
    return [
        f"CPU, {n} images 512x384 JPEG, batch {batch}, onnxruntime {onnxruntime.__version__}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end (other processes share the "
        "cores: compare rows of one run, not runs). Images (tags) per second; loading counted on both sides.",
        "",
        "| path | seconds | images/s | per image |",
        "|---|---|---|---|",
        row("WD tiny tagger: plain loop (session, PIL open, pad/resize/BGR, run, threshold)", wd_plain, n),
        row("WDTagger stage (resolve, load, cache lookups, decode threads, per-batch writes)", wd_cold, n),
        row("WDTagger stage again, every image cached (no model load)", wd_warm, n),
        row("NudeNet: plain `NudeDetector().detect(path)` per image", nn_one, n),
        row(f"NudeNet: plain `detect_batch(paths, batch_size={batch})`", nn_batch, n),
        row("NudeNet stage (resolve, load, cache lookups, decode threads, per-batch writes)", nn_cold, n),
        row("NudeNet stage again, every image cached (no model load)", nn_warm, n),
        "",
        f"Stage overhead over the plain loop: WD {1000 * (wd_cold - wd_plain) / n:+.2f} ms per image, "
        f"NudeNet {1000 * (nn_cold - nn_one) / n:+.2f} ms per image against `detect` "
        "(negative: decoding on the thread pool overlaps the model).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=192)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS-tagging.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    lines = bench(args)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    report = "\n".join([f"## {stamp} — {platform.node()}", "", *lines, ""])
    print(report)
    if not args.results.exists():
        args.results.write_text(
            "# Tagging benchmark results\n\nAppended by `bench/bench_tagging.py`; newest last.\n\n"
        )
    with args.results.open("a") as handle:
        handle.write(report + "\n")


if __name__ == "__main__":
    main()
