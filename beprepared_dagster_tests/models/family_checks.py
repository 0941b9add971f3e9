"""Shared checks for the family backends (Florence-2, Qwen-VL, Gemma 3, Mllama) on tiny random checkpoints:
build and load a backend the way a worker does, prepare images of different sizes, and assert what every
captioner promises: one string per image, a batch equal to single runs (seeded per image), reproducible,
and the seed deciding the sample."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from beprepared_dagster.models.api import Backend, ModelSpec, ResolvedModel, WorkItem, backend_class
from beprepared_dagster_tests.conftest import make_image

SIZES = [(64, 48), (40, 90), (33, 33)]


def load_backend(path: str, folder: Path, **args: Any) -> Backend:
    """`path` ("package.module:Class") built on CPU in float32 over `folder`, loaded."""
    args = {"prompt": "Describe the image.", "max_new_tokens": 6, "temperature": 1.0, "top_p": 0.9, **args}
    engine = backend_class(path)(
        ResolvedModel(ModelSpec(str(folder)), folder), "cpu", "float32", None, **args
    )
    engine.load()
    return engine


def prepared(engine: Backend, folder: Path, seeds: list[int] | None = None) -> list[Any]:
    """Three decoded images of different sizes, prepared by `engine`, seeded 7, 8, 9 unless told."""
    from PIL import Image

    seeds = seeds or [7 + i for i in range(len(SIZES))]
    out = []
    for i, ((width, height), seed) in enumerate(zip(SIZES, seeds, strict=True)):
        path = make_image(folder / f"{i}.jpg", width, height, seed=i)
        out.append(engine.prepare(Image.open(path).convert("RGB"), WorkItem(i, str(path), {"seed": seed})))
    return out


def reseeded(batch: list[Any], seed: int) -> list[Any]:
    return [(image, WorkItem(item.index, item.path, {"seed": seed})) for image, item in batch]


def assert_batched_and_seeded(engine: Backend, batch: list[Any]) -> list[str]:
    """One caption string per image; the batch equals single runs and a rerun; another seed samples anew."""
    together = engine.run(batch)
    assert len(together) == len(batch) and all(isinstance(text, str) for text in together)
    assert [engine.run([one])[0] for one in batch] == together  # an image's caption ignores its batch
    assert engine.run(batch) == together  # same seeds, same text
    assert engine.run(reseeded(batch, 1000)) != together  # the seed is what decides
    return together
