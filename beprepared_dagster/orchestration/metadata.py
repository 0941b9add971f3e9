"""Stage reports → Dagster metadata: each image's own, the run's summary and preview, a few thumbnails, the log line."""

from __future__ import annotations

import base64
import collections
import io
import os
from typing import Any

import dagster as dg

from beprepared_dagster.orchestration.executor import StageReport
from beprepared_dagster.store.objects import ObjectStore
from beprepared_dagster.store.stages import Row

THUMB_EDGE = 96


def stage_metadata(report: StageReport) -> dict[str, Any]:
    """The run's summary, attached to one materialization of the run (the asset's latest): counts, seconds,
    a preview table."""
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
        "computed": report.computed,  # distinct inputs: images with identical inputs share one computation
        "computed_images": report.fresh_images,
        "changed": report.changed,
        "errors": len(report.errors),
        "seconds": round(report.seconds, 3),
        "preview": dg.MetadataValue.md(preview_table(report.preview, report.kept)),
    }
    extra = report.extra  # a stage kind's own figures (e.g. a remote stage's requests, tokens and cost)
    meta.update({k: dg.MetadataValue.json(v) if isinstance(v, dict | list) else v for k, v in extra.items()})
    if report.unreadable_files:
        meta["unreadable_files"] = dg.MetadataValue.json(
            {
                "count": len(report.unreadable_files),
                "first": [f"{p}: {e}" for p, e in report.unreadable_files[:10]],
            }
        )
    return meta


def summary_line(report: StageReport) -> str:
    """The run log's line for a stage: what happened to its images, and where their outcomes came from
    (`computed` counts distinct inputs, so it can be far below the images it served)."""
    rejected = sum(report.rejected.values())
    why = f" ({', '.join(f'{n} {r}' for r, n in sorted(report.rejected.items()))})" if rejected else ""
    line = (
        f"{report.stage}: {report.images} image(s): {report.kept} kept, {rejected} rejected here{why}, "
        f"{report.rejected_upstream} rejected upstream"
    )
    if report.pending:
        line += f", {report.pending} waiting for a label"
    line += f"; outcomes: {report.cache_hits} from cache, {report.computed} computed"
    if report.fresh_images > report.computed:
        line += f" (for {report.fresh_images} images: identical inputs are computed once)"
    return line + f", in {report.seconds:.2f}s"


def preview_table(rows: list[Row], kept: int | None = None) -> str:
    if not rows:
        return "_no kept images in this run_"
    lines = ["| image | size | format | caption |", "|---|---|---|---|"]
    for row in rows:
        p = row.props
        caption = str(p.get("caption") or "").replace("|", "\\|").replace("\n", " ")[:80]
        lines.append(f"| {_name(row)} | {p.get('width')}×{p.get('height')} | {p.get('format')} | {caption} |")
    left = (kept or len(rows)) - len(rows)
    if left > 0:
        lines.append(f"\n_{left} more kept image(s) not shown_")
    return "\n".join(lines)


def _name(row: Row) -> str:
    return os.path.basename(row.props.get("original_path", row.image_id[:12])).replace("|", "\\|")


def image_metadata(row: Row) -> dict[str, Any]:
    """One image's own metadata at a stage: what its partition page shows (a few small values)."""
    p = row.props
    meta: dict[str, Any] = {"file": _name(row), "status": row.status}
    if p.get("width") is not None:
        meta["size"] = f"{p.get('width')}×{p.get('height')}"
    if row.reason:
        meta["reason"] = row.reason if not row.at_stage else f"{row.reason} (at {row.at_stage})"
    return meta


# Object id → its thumbnail, for this process: a run's stages preview the same new images one after the
# other (each decode of a large photo ~5 ms). An id is the SHA-256 of the bytes, so it never goes stale.
_THUMBNAILS: collections.OrderedDict[str, str] = collections.OrderedDict()
_THUMBNAILS_KEPT = 256


def thumbnail_markdown(objects: ObjectStore, object_id: str) -> str | None:
    """A tiny inline JPEG (Dagster metadata has no image type; its CSP allows data: images)."""
    made = _THUMBNAILS.get(object_id)
    if made is None:
        made = _thumbnail(objects, object_id)
        if made is None:
            return None
        _THUMBNAILS[object_id] = made
        while len(_THUMBNAILS) > _THUMBNAILS_KEPT:
            _THUMBNAILS.popitem(last=False)
    return made


def _thumbnail(objects: ObjectStore, object_id: str) -> str | None:
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
