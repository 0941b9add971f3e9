"""Stage reports → Dagster metadata: counts, seconds, a small preview table, a few thumbnails."""

from __future__ import annotations

import base64
import io
import os
from typing import Any

import dagster as dg

from beprepared_dagster.orchestration.executor import StageReport
from beprepared_dagster.store.objects import ObjectStore
from beprepared_dagster.store.stages import Row

THUMB_EDGE = 96


def stage_metadata(report: StageReport) -> dict[str, Any]:
    """Metadata attached to every partition's materialization of the run (kept small: it is stored per event)."""
    rejected = dict(sorted(report.rejected.items()))
    meta: dict[str, Any] = {
        "images": report.images,
        "kept": report.kept,
        "rejected": sum(rejected.values()),
        "rejected_by_reason": dg.MetadataValue.json(rejected),
        "rejected_upstream": report.rejected_upstream,
        "waiting_for_label": report.pending,
        "not_from_this_source": report.absent,
        "cache_hits": report.cache_hits,
        "computed": report.computed,
        "changed": report.changed,
        "errors": len(report.errors),
        "seconds": round(report.seconds, 3),
        "preview": dg.MetadataValue.md(preview_table(report.preview)),
    }
    if report.unreadable_files:
        meta["unreadable_files"] = dg.MetadataValue.json(
            {
                "count": len(report.unreadable_files),
                "first": [f"{p}: {e}" for p, e in report.unreadable_files[:10]],
            }
        )
    return meta


def preview_table(rows: list[Row]) -> str:
    if not rows:
        return "_no kept images in this run_"
    lines = ["| image | size | format | caption |", "|---|---|---|---|"]
    for row in rows:
        p = row.props
        name = os.path.basename(p.get("original_path", row.image_id[:12])).replace("|", "\\|")
        caption = str(p.get("caption") or "").replace("|", "\\|").replace("\n", " ")[:80]
        lines.append(f"| {name} | {p.get('width')}×{p.get('height')} | {p.get('format')} | {caption} |")
    return "\n".join(lines)


def thumbnail_markdown(objects: ObjectStore, object_id: str) -> str | None:
    """A tiny inline JPEG (Dagster metadata has no image type; its CSP allows data: images)."""
    from PIL import Image, ImageOps

    try:
        with Image.open(objects.path(object_id)) as image:
            image.draft("RGB", (THUMB_EDGE * 2, THUMB_EDGE * 2))
            image = ImageOps.exif_transpose(image)
            image.thumbnail((THUMB_EDGE, THUMB_EDGE))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, "JPEG", quality=70)
    except (OSError, ValueError):
        return None
    return f"![thumbnail](data:image/jpeg;base64,{base64.b64encode(buffer.getvalue()).decode()})"
