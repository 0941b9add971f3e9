"""An injected embedder whose vectors separate red from blue images by construction (a tiny random CLIP
cannot be relied on for that), run through the real model runtime and embeddings store; and coloured
image folders."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from beprepared_dagster.models.api import Backend
from beprepared_dagster.nodes.embeddings import ClipEmbed

DIM = 16


class ColourEmbedBackend(Backend):
    """Vector: [red - blue, green, 14 small pseudo-random values from the pixels], L2-normalised."""

    def load(self) -> None:
        pass

    def prepare(self, image: Any, item: Any) -> Any:
        pixels = np.asarray(image.convert("RGB").resize((8, 8)), dtype=np.float32) / 255
        r, g, b = pixels.mean(axis=(0, 1))
        seed = int.from_bytes(hashlib.sha256(pixels.tobytes()).digest()[:4], "big")
        noise = np.random.default_rng(seed).normal(scale=0.05, size=DIM - 2)
        vector = np.concatenate([[r - b, g], noise]).astype(np.float32)
        return vector / np.linalg.norm(vector)

    def run(self, batch: list[Any]) -> list[Any]:
        return list(batch)


class ColourEmbed(ClipEmbed):
    """ClipEmbed with the colour embedder (any CLIP folder satisfies the model resolution)."""

    backend: ClassVar[str] = "beprepared_dagster_tests.learning.fakes:ColourEmbedBackend"


def coloured(folder: Path, red: int, blue: int, grey: int = 0, start: int = 0) -> dict[str, list[Path]]:
    """PNG files red_*, blue_*, grey_* with shades and sizes that differ per file (numbered from `start`)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, list[Path]] = {"red": [], "blue": [], "grey": []}
    colours = {
        "red": lambda i: (150 + 3 * i, 10 + i, 20),
        "blue": lambda i: (20, 10 + i, 150 + 3 * i),
        "grey": lambda i: (120 + i, 120 + i, 120 + i),
    }
    for name, count in (("red", red), ("blue", blue), ("grey", grey)):
        for i in range(start, start + count):
            path = folder / f"{name}_{i:02d}.png"
            Image.new("RGB", (24 + i % 5, 24), colours[name](i)).save(path)
            made[name].append(path)
    return made
