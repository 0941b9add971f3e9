"""Display copies: size bound, EXIF orientation, format choice, served-as-is originals, generated once, safe
under concurrent requests, refused ids. Not covered: HTTP caching headers (test_app_http.py)."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from beprepared_dagster.errors import BadImage
from beprepared_dagster.labeling.display import DisplayCache
from beprepared_dagster.store.objects import ObjectStore

DATA = Path(__file__).resolve().parents[1] / "data" / "images"


@pytest.fixture
def cache(tmp_path: Path) -> DisplayCache:
    return DisplayCache(ObjectStore(tmp_path / "objects"), tmp_path / "cache" / "display")


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def shown(cache: DisplayCache, object_id: str) -> Image.Image:
    found = cache.get(object_id)
    assert found is not None
    image = Image.open(found.path)
    image.load()
    return image


def test_large_photo_becomes_a_jpeg_with_long_edge_1600(cache: DisplayCache) -> None:
    object_id = cache.objects.put_bytes(encode(Image.new("RGB", (4000, 3000), (200, 30, 30)), quality=90))
    found = cache.get(object_id)
    assert found is not None and found.media_type == "image/jpeg"
    assert found.path.is_relative_to(cache.root) and found.path.name == f"{object_id}.jpg"
    image = shown(cache, object_id)
    assert image.size == (1600, 1200) and image.format == "JPEG"


def test_exif_orientation_is_applied(cache: DisplayCache) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    big = encode(Image.new("RGB", (3000, 2000), (10, 120, 10)), exif=exif.tobytes())
    assert shown(cache, cache.objects.put_bytes(big)).size == (1067, 1600)
    small = (DATA / "exif-rotated-60x40.jpg").read_bytes()
    assert shown(cache, cache.objects.put_bytes(small)).size == (40, 60)  # small, but not upright: re-encoded


def test_transparency_becomes_webp(cache: DisplayCache) -> None:
    object_id = cache.objects.put_bytes(encode(Image.new("RGBA", (2400, 1200), (0, 0, 255, 100)), "PNG"))
    found = cache.get(object_id)
    assert found is not None and found.media_type == "image/webp"
    image = shown(cache, object_id)
    assert image.size == (1600, 800) and image.mode == "RGBA"


@pytest.mark.parametrize("name", ["tiff-rgb.tiff", "bitmap.bmp", "cmyk-40x30.jpg", "gray16-48x32.png"])
def test_formats_a_browser_cannot_show_are_converted(cache: DisplayCache, name: str) -> None:
    object_id = cache.objects.put_bytes((DATA / name).read_bytes())
    found = cache.get(object_id)
    assert found is not None and found.media_type == "image/jpeg" and found.path.is_relative_to(cache.root)
    assert shown(cache, object_id).mode in ("RGB", "L")


def test_small_web_images_are_served_as_they_are(cache: DisplayCache) -> None:
    object_id = cache.objects.put_bytes((DATA / "640x480.jpg").read_bytes())
    found = cache.get(object_id)
    assert found is not None and found.path == cache.objects.path(object_id)
    assert found.media_type == "image/jpeg"
    assert (
        DisplayCache(cache.objects, cache.root).get(object_id) == found
    )  # the decision is remembered on disk


def test_generated_once_and_safe_under_concurrent_requests(cache: DisplayCache, monkeypatch) -> None:
    object_id = cache.objects.put_bytes(encode(Image.new("RGB", (3200, 2400), (1, 2, 3))))
    import beprepared_dagster.labeling.display as display

    calls = []
    original = display.render
    monkeypatch.setattr(display, "render", lambda *a, **k: calls.append(1) or original(*a, **k))
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(object_id))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({r.path for r in results}) == 1
    fresh = DisplayCache(cache.objects, cache.root)  # another process: finds the file, renders nothing
    assert fresh.get(object_id) == results[0] and len(calls) == 1
    assert not [p for p in cache.root.rglob(".tmp-*")]


def test_ids_are_validated_and_bad_bytes_reported(cache: DisplayCache) -> None:
    for bad in ["../../etc/passwd", "A" * 64, "0" * 63, "0" * 64 + "/x", ""]:
        with pytest.raises(ValueError):
            cache.get(bad)
    assert cache.get("0" * 64) is None
    broken = cache.objects.put_bytes((DATA / "truncated.jpg").read_bytes()[:200])
    with pytest.raises(BadImage):
        cache.get(broken)


def test_warm_generates_in_the_background(cache: DisplayCache) -> None:
    ids = [cache.objects.put_bytes(encode(Image.new("RGB", (2000, 1000), (i, 0, 0)))) for i in range(3)]
    cache.warm(ids)
    deadline = time.monotonic() + 30
    while not all((cache.root / i[:2] / f"{i}.jpg").is_file() for i in ids):
        assert time.monotonic() < deadline, "the warmer did not generate the copies"
        time.sleep(0.05)


def test_urgent_warm_of_a_copy_being_made_neither_fails_nor_queues_it_twice(tmp_path: Path) -> None:
    slots = threading.BoundedSemaphore(1)
    cache = DisplayCache(ObjectStore(tmp_path / "objects"), tmp_path / "cache" / "display", slots=slots)
    ids = [cache.objects.put_bytes(encode(Image.new("RGB", (2000, 1000), (0, 100 * i, 0)))) for i in range(2)]
    assert ids[0] != ids[1]
    with slots:  # the warmer takes the first id and waits for a slot: it is being made
        cache.warm(ids[:1])
        deadline = time.monotonic() + 30
        while cache.pending():
            assert time.monotonic() < deadline, "the warmer did not take the copy"
            time.sleep(0.01)
        # The page asks for it (and a next one, twice) urgently while it is being made.
        assert cache.warm([ids[0], ids[1], ids[1]], urgent=True) == 1
        assert cache.pending() == 1
    deadline = time.monotonic() + 30
    while not all((cache.root / i[:2] / f"{i}.jpg").is_file() for i in ids):
        assert time.monotonic() < deadline, "the warmer did not generate the copies"
        time.sleep(0.05)
