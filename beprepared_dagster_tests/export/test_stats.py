"""Dataset statistics (`export.stats`, `export.buckets`, `export.report`): the numbers, the bucket choice, the
chart PNG and the HTML page, and that an export writes them.

Not covered here: the Dagster asset that shows them (orchestration/test_stats.py).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from beprepared_dagster.export.buckets import (
    FLUX_BUCKETS,
    SDXL_BUCKETS,
    is_upscaled,
    kohya_buckets,
    nearest_bucket,
)
from beprepared_dagster.export.captions import CaptionSpec
from beprepared_dagster.export.clip_tokens import count_tokens
from beprepared_dagster.export.dataset import STATS_HTML, STATS_JSON, export_dataset, read_stats
from beprepared_dagster.export.entries import plan_entries
from beprepared_dagster.export.report import render_chart, render_report
from beprepared_dagster.export.stats import compute_stats
from beprepared_dagster.nodes import Save
from beprepared_dagster.store.objects import ObjectStore
from beprepared_dagster.store.stages import KEPT, Row


def row(n: int, width=1024, height=1024, seq=0, **props) -> Row:
    oid = f"{n:064x}"
    base = {"objectid": oid, "original_path": f"/p/{n}.jpg", "ext": ".jpg", "width": width, "height": height}
    return Row(oid, seq, KEPT, props={**base, **props})


def stats_of(rows: list[Row], **spec) -> dict:
    spec_obj = CaptionSpec(**spec)
    return compute_stats(plan_entries(rows, spec_obj), spec_obj.tags_prop, "original")


def counts(pairs) -> dict:
    return {name: n for name, n in pairs if n}


# --- buckets ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "bucket"),
    [
        ((1024, 1024), (1024, 1024)),
        ((4000, 4000), (1024, 1024)),
        ((1920, 1080), (1344, 768)),  # 16:9 → the nearest aspect ratio, 1.75
        ((1080, 1920), (768, 1344)),
        ((3000, 2000), (1216, 832)),  # 3:2 → 1.46
        ((4000, 1000), (1536, 640)),  # wider than any bucket: the widest
        ((800, 600), (1152, 896)),  # 4:3 → 1.29
    ],
)
def test_sdxl_bucket_is_the_nearest_aspect_ratio(size, bucket):
    assert nearest_bucket(*size, SDXL_BUCKETS) == bucket


def test_bisected_nearest_answers_as_min_does_ties_and_duplicates_included():
    """Statistics place each distinct size by bisection; it must pick what a scan of the list picks."""
    import random

    from beprepared_dagster.export.buckets import Nearest

    rng = random.Random(3)
    lists = [[b[0] / b[1] for b in buckets] for buckets in (SDXL_BUCKETS, FLUX_BUCKETS)]
    lists += [[1.0, 2.0, 1.0, 3.0], [2.0, 1.0], [5.0]]  # a repeated value; ties halfway between two
    for values in lists:
        nearest = Nearest(values)
        probes = [rng.uniform(0.05, 8) for _ in range(2000)] + values + [1.5, 2.5, 0.0, 100.0]
        probes += [rng.randint(1, 4000) / rng.randint(1, 4000) for _ in range(2000)]
        for x in probes:
            assert nearest(x) == min(range(len(values)), key=lambda i: abs(values[i] - x)), (values, x)


def test_upscaling_is_when_the_image_cannot_cover_its_bucket():
    assert is_upscaled(512, 512, (1024, 1024))
    assert not is_upscaled(2048, 2048, (1024, 1024))
    assert is_upscaled(1344, 700, (1344, 768))  # wide enough, not tall enough
    assert not is_upscaled(1344, 768, (1344, 768))


def test_kohya_bucket_enumeration():
    """sd-scripts' make_bucket_resolutions at 1024² on a 64-px grid (Flux: sides must be multiples of 16)."""
    assert kohya_buckets() == FLUX_BUCKETS
    assert (1024, 1024) in FLUX_BUCKETS and (640, 1600) in FLUX_BUCKETS and (1600, 640) in FLUX_BUCKETS
    assert all(w * h <= 1024 * 1024 and w % 64 == 0 and h % 64 == 0 for w, h in FLUX_BUCKETS)
    assert all((h, w) in FLUX_BUCKETS for w, h in FLUX_BUCKETS)
    assert min(min(b) for b in FLUX_BUCKETS) == 256 and max(max(b) for b in FLUX_BUCKETS) == 2048
    sd15 = kohya_buckets(512 * 512, 256, 1024, 64)
    assert {(512, 512), (448, 576), (384, 640), (320, 768), (256, 1024), (1024, 256)} <= set(sd15)
    assert all(w * h <= 512 * 512 for w, h in sd15)


# --- numbers ---------------------------------------------------------------------------------------------


def test_image_counts_sizes_and_buckets():
    rows = [row(1, 1920, 1080), row(2, 1080, 1920), row(3, 512, 512), row(4, 3000, 2000), row(5, None, None)]
    stats = stats_of(rows)
    assert (stats["images"], stats["image_files"], stats["unknown_size"]) == (5, 5, 1)
    assert counts(stats["megapixels"]) == {"0.25-0.5 MP": 1, "2-4 MP": 2, "4-8 MP": 1}
    assert counts(stats["short_edge"]) == {"512-767": 1, "1024-1535": 2, "1536-2047": 1}
    assert counts(stats["aspect"]) == {"16:9": 1, "9:16": 1, "1:1": 1, "3:2": 1}
    sdxl = stats["buckets"]["sdxl"]
    assert counts(sdxl["counts"]) == {"1344x768": 1, "768x1344": 1, "1024x1024": 1, "1216x832": 1}
    # Every SDXL bucket is listed, empty ones too, so the chart keeps its shape.
    assert [name for name, _ in sdxl["counts"]] == [f"{w}x{h}" for w, h in SDXL_BUCKETS]
    assert sdxl["upscaled"] == 1  # only the 512×512 image
    assert stats["buckets"]["flux"]["upscaled"] == 1


def test_copies_per_caption_count_once_for_sizes_and_tags_but_every_caption_counts():
    rows = [
        row(1, caption=["a cat", "a cat on a mat"], tags=["cat"]),
        row(2, caption="a dog", tags=["dog", "cat"]),
    ]
    stats = stats_of(rows, tags_prop="tags", multi_caption="files")
    assert (stats["images"], stats["image_files"], stats["captions"]) == (2, 3, 3)
    assert stats["tags"]["top"] == [("cat", 2), ("dog", 1)]
    assert (stats["tags"]["distinct"], stats["tags"]["tagged_images"]) == (2, 2)
    assert counts(stats["buckets"]["sdxl"]["counts"]) == {"1024x1024": 2}


def test_caption_lengths_in_words_and_clip_tokens_of_the_rendered_caption():
    long_caption = ", ".join(["a very detailed description of a scene"] * 12)
    rows = [row(1, caption="a photo of a cat"), row(2, caption=long_caption), row(3)]
    stats = stats_of(rows, trigger="ohwx")
    tokens, words = stats["clip_tokens"], stats["caption_words"]
    # Counted on the caption as written: "ohwx, a photo of a cat" (trigger and comma included), "ohwx" alone.
    assert count_tokens("ohwx, a photo of a cat") == 7 and count_tokens("ohwx") == 1
    assert (tokens["min"], tokens["median"]) == (1, 7) and tokens["max"] > 75
    assert tokens["count"] == 3 and tokens["over_limit"] == 1 and tokens["limit"] == 75
    assert "CLIP" in tokens["tokenizer"] and "bpe_simple_vocab_16e6" in tokens["tokenizer"]
    assert words["min"] == 1 and words["max"] == 1 + 7 * 12  # "ohwx" alone (image 3) … the long one
    assert counts(tokens["histogram"]).get("76-150") == 1


def test_no_captions():
    stats = stats_of([row(1)])
    assert stats["captions"] == 0 and stats["clip_tokens"]["median"] is None
    render_report("t", stats, render_chart(stats))  # renders without captions or tags


# --- chart and page --------------------------------------------------------------------------------------


def test_chart_is_a_small_png():
    stats = stats_of(
        [row(i, 800 + 50 * i, 600, caption="x " * i, tags=[f"t{i % 3}"]) for i in range(1, 30)],
        tags_prop="tags",
    )
    png = render_chart(stats)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (900, 472)
    assert len(png) < 40_000  # stored in the event log with the asset's metadata
    assert render_chart(stats) == png  # deterministic: an unchanged dataset leaves the export unchanged


def test_report_is_self_contained_and_escaped():
    stats = stats_of(
        [row(1, caption="<script>alert(1)</script>", tags=["<img src=x onerror=alert(1)>"])], tags_prop="tags"
    )
    page = render_report("<b>my</b> set", stats, render_chart(stats))
    assert "<script>" not in page and "<img src=x" not in page and "<b>my</b>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;b&gt;my&lt;/b&gt; set" in page
    assert "data:image/png;base64," in page
    assert "http://" not in page and "https://" not in page  # no CDN, no external asset
    assert "bpe_simple_vocab_16e6" in page  # says which tokenizer counted


def test_export_writes_the_statistics_beside_the_images(tmp_path: Path):
    from beprepared_dagster_tests.export.rows import image_row

    objects = ObjectStore(tmp_path / "objects")
    rows = [image_row(objects, tmp_path, i, f"/p/{i}.jpg", caption="a photo of a cat") for i in range(3)]
    target = tmp_path / "out"
    report = export_dataset(target, rows, objects, Save(), "stats")
    assert (target / STATS_HTML).is_file()
    saved = read_stats(target)
    assert saved == json.loads(json.dumps(report.stats)) and saved["images"] == 3
    assert saved["clip_tokens"]["median"] == 5
    assert '<a href="dataset_stats.html">' in (target / "index.html").read_text()
    export_dataset(target, rows, objects, Save(stats=False), "stats")
    assert (
        not (target / STATS_HTML).exists()
        and not (target / STATS_JSON).exists()
        and read_stats(target) is None
    )
