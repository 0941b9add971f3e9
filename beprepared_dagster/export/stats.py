"""Dataset statistics: the numbers people check before training, computed from exactly what an export writes.

Sizes, aspect ratios, buckets and tags count each distinct exported image once (copies made for several
captions don't skew them); caption lengths count every caption as written (trigger and rendered tags
included), in words and in CLIP tokens. The result is a JSON-able dict: Save writes it beside the export
(`.beprepared-stats.json`, read back by the `dataset_stats` asset) and renders it as `dataset_stats.html`.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections import Counter
from typing import Any

from beprepared_dagster.export.buckets import BUCKET_NOTES, BUCKET_SETS, Nearest, is_upscaled, label
from beprepared_dagster.export.captions import raw_tags
from beprepared_dagster.export.clip_tokens import TOKENIZER_NAME, USABLE_TOKENS, count_tokens
from beprepared_dagster.export.entries import Entry

STATS_VERSION = 1
TOP_TAGS = 50
_MP_BINS = [
    (0.25, "<0.25 MP"),
    (0.5, "0.25-0.5 MP"),
    (1, "0.5-1 MP"),
    (2, "1-2 MP"),
    (4, "2-4 MP"),
    (8, "4-8 MP"),
]
_EDGE_BINS = [
    (256, "<256"),
    (512, "256-511"),
    (768, "512-767"),
    (1024, "768-1023"),
    (1536, "1024-1535"),
    (2048, "1536-2047"),
]
_ASPECTS = [
    (1 / 2, "1:2 or taller"),
    (9 / 16, "9:16"),
    (2 / 3, "2:3"),
    (3 / 4, "3:4"),
    (1, "1:1"),
    (4 / 3, "4:3"),
    (3 / 2, "3:2"),
    (16 / 9, "16:9"),
    (2, "2:1 or wider"),
]
_WORD_BINS = [
    (10, "1-9"),
    (20, "10-19"),
    (40, "20-39"),
    (60, "40-59"),
    (80, "60-79"),
    (120, "80-119"),
    (200, "120-199"),
]
# 75 = one CLIP window; 150 / 225 = sd-scripts' --max_token_length chunking.
_TOKEN_BINS = [(21, "1-20"), (41, "21-40"), (61, "41-60"), (76, "61-75"), (151, "76-150"), (226, "151-225")]


def compute_stats(entries: list[Entry], tags_prop: str | None, layout: str) -> dict[str, Any]:
    """Statistics of an export's entries (see the module docstring for what counts once)."""
    distinct = list({(e.image_id, e.object_id): e for e in entries}.values())
    sizes = [s for s in (_size(e.props) for e in distinct) if s]
    captions = [c for e in entries for c in e.captions]
    tokens = [count_tokens(c) for c in captions]
    return {
        "version": STATS_VERSION,
        "layout": layout,
        "images": len(distinct),
        "image_files": len(entries),
        "unknown_size": len(distinct) - len(sizes),
        "captioned_files": sum(1 for e in entries if e.captions),
        "captions": len(captions),
        "megapixels": _histogram([w * h / 1e6 for w, h in sizes], _MP_BINS, ">=8 MP"),
        "short_edge": _histogram([min(w, h) for w, h in sizes], _EDGE_BINS, ">=2048"),
        "common_resolutions": Counter(f"{w}x{h}" for w, h in sizes).most_common(10),
        "aspect": _aspects(sizes),
        "buckets": {name: _buckets(sizes, name) for name in BUCKET_SETS},
        "tags": _tags(distinct, tags_prop or "tags"),
        "caption_words": _lengths([len(c.split()) for c in captions], _WORD_BINS, ">=200"),
        "clip_tokens": {
            **_lengths(tokens, _TOKEN_BINS, ">225"),
            "limit": USABLE_TOKENS,
            "over_limit": sum(1 for t in tokens if t > USABLE_TOKENS),
            "tokenizer": TOKENIZER_NAME,
        },
    }


def _size(props: dict[str, Any]) -> tuple[int, int] | None:
    width, height = props.get("width"), props.get("height")
    if isinstance(width, int | float) and isinstance(height, int | float) and width > 0 and height > 0:
        return int(width), int(height)
    return None


def _histogram(values: list[float], bins: list[tuple[float, str]], last: str) -> list[list[Any]]:
    """Counts per bin, every bin listed (zeros included) so charts keep their shape."""
    counts = Counter(next((name for bound, name in bins if v < bound), last) for v in values)
    return [[name, counts.get(name, 0)] for name in [*(n for _, n in bins), last]]


def _aspects(sizes: list[tuple[int, int]]) -> list[list[Any]]:
    """Counts per nearest common aspect ratio (nearest in log space, so 1:2 and 2:1 are symmetric)."""
    counts: Counter[str] = Counter()
    nearest = _nearest_aspect()
    for (width, height), n in Counter(sizes).items():  # once per distinct size
        counts[_ASPECTS[nearest(math.log(width / height))][1]] += n
    return [[name, counts.get(name, 0)] for _, name in _ASPECTS]


@functools.cache
def _nearest_aspect() -> Nearest:
    """The nearest common aspect ratio in log space (so 1:2 and 2:1 are symmetric)."""
    return Nearest([math.log(ratio) for ratio, _ in _ASPECTS])


def _buckets(sizes: list[tuple[int, int]], name: str) -> dict[str, Any]:
    buckets = BUCKET_SETS[name]
    per_bucket = [0] * len(buckets)
    upscaled = 0
    nearest = Nearest([b[0] / b[1] for b in buckets])  # = nearest_bucket, set up once
    for (width, height), n in Counter(sizes).items():  # once per distinct size
        i = nearest(width / height)
        per_bucket[i] += n
        upscaled += n * is_upscaled(width, height, buckets[i])
    counts = [[label(b), n] for b, n in zip(buckets, per_bucket, strict=True)]
    return {
        "note": BUCKET_NOTES[name],
        "counts": counts if len(buckets) <= 12 else [c for c in counts if c[1]],
        "upscaled": upscaled,
    }


def _tags(distinct: list[Entry], prop: str) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    tagged = 0
    for entry in distinct:
        tags = raw_tags(entry.props, prop)
        tagged += bool(tags)
        counts.update(tags)
    return {
        "prop": prop,
        "tagged_images": tagged,
        "distinct": len(counts),
        "top": counts.most_common(TOP_TAGS),
    }


def _lengths(values: list[int], bins: list[tuple[float, str]], last: str) -> dict[str, Any]:
    summary: dict[str, Any] = {"count": len(values), "min": None, "median": None, "mean": None, "max": None}
    if values:
        summary.update(
            min=min(values),
            median=statistics.median(values),
            mean=round(statistics.fmean(values), 1),
            max=max(values),
        )
    summary["histogram"] = _histogram(values, bins, last)
    return summary
