"""Shared fixtures: a temp workspace, the committed tiny images, generated image folders, a temp DAGSTER_HOME."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# No warm runner behind the `beprepared` commands tests start (test_warm.py turns it on for its own).
os.environ["BEPREPARED_WARM"] = "0"

# Tiny random models of each family, built once per session (a second or two each, only when a test asks).
pytest_plugins = [
    "beprepared_dagster_tests.tiny_models.llava",
    "beprepared_dagster_tests.tiny_models.families",
    "beprepared_dagster_tests.tiny_models.joycaption_alpha",
    "beprepared_dagster_tests.tiny_models.remote_code",
    "beprepared_dagster_tests.tiny_models.onnx_tagger",
    "beprepared_dagster_tests.tiny_models.clip",
]

DATA = Path(__file__).resolve().parent / "data" / "images"
GOOD_FIXTURES = [
    "64x48.jpg",
    "640x480.jpg",
    "rgba-32x32.png",
    "palette-transparent-32x32.png",
    "cmyk-40x30.jpg",
    "gray16-48x32.png",
    "exif-rotated-60x40.jpg",
    "UPPER-CASE.JPG",
    "lower.jpeg",
    "ünïcode-名前.png",
    "anim-2frames.gif",
    "bitmap.bmp",
    "tiff-rgb.tiff",
    "webp-rgb.webp",
    "webp-as-png.png",
]
BAD_FIXTURES = ["zero-bytes.jpg", "truncated.jpg", "text-file.jpg", "bomb.png"]


def make_image(path: Path, width: int, height: int, seed: int = 0, fmt: str = "JPEG") -> Path:
    """A small distinct image (its bytes differ per seed, so each gets its own identity)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    draw = ImageDraw.Draw(image)
    block = max(2, width // 20)
    for bit in range(20):  # the seed in binary as black/white blocks: survives JPEG, distinct per seed
        colour = (255, 255, 255) if (seed >> bit) & 1 else (0, 0, 0)
        draw.rectangle([bit * block, 0, bit * block + block - 1, block - 1], fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, fmt, quality=90) if fmt == "JPEG" else image.save(path, fmt)
    return path


def make_images(folder: Path, count: int, width: int = 64, height: int = 48, start: int = 0) -> list[Path]:
    return [
        make_image(folder / f"img_{i:05d}.jpg", width, height, seed=i) for i in range(start, start + count)
    ]


@pytest.fixture
def workspace_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty workspace folder, also set as $BEPREPARED_WORKSPACE."""
    ws = tmp_path / "workspace"
    monkeypatch.setenv("BEPREPARED_WORKSPACE", str(ws))
    return ws


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A folder of 6 generated images: 4 of 768x576, 2 of 320x200 (below a 512 min edge)."""
    folder = tmp_path / "photos"
    for i in range(4):
        make_image(folder / f"big_{i}.jpg", 768, 576, seed=i)
    for i in range(2):
        make_image(folder / f"small_{i}.jpg", 320, 200, seed=100 + i)
    return folder


@pytest.fixture
def fixture_folder(tmp_path: Path) -> Path:
    """A copy of every committed good and bad fixture image."""
    folder = tmp_path / "fixtures"
    folder.mkdir()
    for name in GOOD_FIXTURES + BAD_FIXTURES:
        shutil.copy(DATA / name, folder / name)
    return folder


@pytest.fixture(autouse=True)
def _labeling_env_restored():
    """A headless run that finds the labeling port taken moves to a free one and records it in the
    environment (so every URL it prints agrees): keep that from leaking into the next test."""
    import os

    saved = {k: v for k, v in os.environ.items() if k.startswith("BEPREPARED_LABELING")}
    yield
    for key in [k for k in os.environ if k.startswith("BEPREPARED_LABELING")]:
        del os.environ[key]
    os.environ.update(saved)
