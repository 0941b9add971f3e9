"""Benchmark: the captioning runtime against calling `generate` in a plain loop on the same inputs.

    .venv/bin/python bench/bench_captioning.py [--images 96] [--batch 8] [--tokens 16] [--results FILE]
    .venv/bin/python bench/bench_captioning.py --gpu [--models joycaption,qwen25] [--tokens 64]

CPU mode (runs anywhere, tiny random LLaVA): a plain loop (PIL open, processor, `generate` with a fixed number
of new tokens, decode; nothing stored) against `StageExecutor.run` of a `VLMCaption` stage on the same images
(DuckDB reads, cache lookups, decoding on the thread pool, generation, per-batch writes) and against a warm
re-run (every image cached: no model load at all). Per-image overhead = (runtime - plain loop) / images.

GPU mode (needs CUDA; no weights are downloaded): real-size architectures built from their configs with random
weights on the GPU — JoyCaption Beta One (LLaVA: SigLIP so400m + Llama-3.1-8B) and Qwen2.5-VL-7B — and a
fixed number of new tokens. It measures images/s of our backend at the node's default batch and at the best
batch found, against the original tool's way on the same model (batch 4 for JoyCaption, 1 for Qwen).
Throughput does not depend on the weights' values.

Prints figures; it is not a test. Results are appended to bench/RESULTS-captioning.md.
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


def plain_loop(model_dir: Path, paths: list[Path], batch: int, tokens: int) -> float:
    import torch
    import transformers as T
    from PIL import Image

    started = time.perf_counter()  # loading included, as in the stage (which loads once per run)
    processor = T.AutoProcessor.from_pretrained(model_dir)
    processor.tokenizer.padding_side = "left"
    model = T.AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe."}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    for start in range(0, len(paths), batch):
        images = [Image.open(p).convert("RGB") for p in paths[start : start + batch]]
        inputs = processor(images=images, text=[prompt] * len(images), padding=True, return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
        processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    return time.perf_counter() - started


def runtime_stage(model_dir: Path, photos: Path, ws: Path, batch: int, tokens: int) -> tuple[float, float]:
    from beprepared_dagster import Load, Save, VLMCaption, Workflow
    from beprepared_dagster.orchestration.discovery import discover
    from beprepared_dagster.orchestration.executor import StageExecutor
    from beprepared_dagster.store.workspace import WorkspaceStore

    class Fixed(VLMCaption):  # the same fixed number of new tokens as the plain loop
        def backend_args(self) -> dict:
            return {**super().backend_args(), "min_new_tokens": tokens}

    node = Fixed(
        model=str(model_dir), prompt="Describe.", max_new_tokens=tokens, temperature=0, batch_size=batch
    )
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


def cpu_bench(args: argparse.Namespace) -> list[str]:
    import torch

    from beprepared_dagster_tests.tiny_models.llava import build_tiny_llava

    work = Path(tempfile.mkdtemp(prefix="bench-caption-"))
    model_dir = build_tiny_llava(work / "tiny-llava")
    paths = make_images(work / "photos", args.images)
    plain_loop(model_dir, paths[: args.batch], args.batch, args.tokens)  # warm-up: first-call costs
    plain = plain_loop(model_dir, paths, args.batch, args.tokens)
    cold, warm = runtime_stage(model_dir, work / "photos", work / "ws", args.batch, args.tokens)
    n = len(paths)
    return [
        f"CPU, tiny random LLaVA, {n} images 512x384 JPEG, batch {args.batch}, {args.tokens} new tokens, "
        f"torch {torch.__version__}, {os.cpu_count()} cores",
        "",
        "| path | seconds | images/s | per image |",
        "|---|---|---|---|",
        f"| plain loop (load, then open, processor, generate, decode; nothing stored) | {plain:.2f} | {n / plain:.1f} | "
        f"{1000 * plain / n:.1f} ms |",
        f"| VLMCaption stage (resolve, load, cache lookups, decode threads, per-batch DuckDB writes) | {cold:.2f} | "
        f"{n / cold:.1f} | {1000 * cold / n:.1f} ms |",
        f"| same stage again, every image cached (no model load) | {warm:.2f} | {n / warm:.0f} | "
        f"{1000 * warm / n:.2f} ms |",
        "",
        f"Runtime overhead over the plain loop: {1000 * (cold - plain) / n:+.1f} ms per image "
        "(negative: decoding on the thread pool overlaps generation).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument(
        "--gpu", action="store_true", help="real-size architectures on CUDA (see the docstring)"
    )
    parser.add_argument("--models", default="joycaption,qwen25")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS-captioning.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.gpu:
        from bench_captioning_gpu import gpu_bench

        lines = gpu_bench(args)
    else:
        lines = cpu_bench(args)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    report = "\n".join([f"## {stamp} — {platform.node()}", "", *lines, ""])
    print(report)
    with args.results.open("a") as handle:
        handle.write(report + "\n")


if __name__ == "__main__":
    main()
