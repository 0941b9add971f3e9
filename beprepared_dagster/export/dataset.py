"""One entry point for every Save node: plan the layout's files, add the gallery and the statistics page,
and write them all with the shared incremental/atomic writer (`export.atomic`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from beprepared_dagster.export.atomic import ExportReport, PlannedFile, text_file, write_export
from beprepared_dagster.export.captions import CaptionSpec
from beprepared_dagster.export.entries import Entry, plan_entries
from beprepared_dagster.export.folder import original_files
from beprepared_dagster.export.gallery import render_gallery
from beprepared_dagster.export.imagefolder import imagefolder_files
from beprepared_dagster.export.kohya import folder_namer, kohya_files
from beprepared_dagster.export.report import render_chart, render_report
from beprepared_dagster.export.stats import compute_stats
from beprepared_dagster.store.stages import Row

GALLERY = "index.html"
STATS_HTML = "dataset_stats.html"
# Hidden, like the manifest: trainers and `datasets` skip dot files. The `dataset_stats` asset reads it.
STATS_JSON = ".beprepared-stats.json"

Files = Callable[[list[Entry], Any, Path], list[PlannedFile]]
Folders = Callable[[Any], Callable[[dict[str, Any]], str] | None]

LAYOUTS: dict[str, tuple[Folders, Files]] = {
    "original": (lambda node: None, original_files),
    "kohya": (folder_namer, kohya_files),
    "imagefolder": (lambda node: lambda props: node.split, imagefolder_files),
}


def export_dataset(target: Path, rows: list[Row], objects: Any, node: Any, title: str) -> ExportReport:
    """Write `rows` (kept images) to `target` in `node`'s layout; rewrite nothing if it would be identical.

    Raises:
        ExportRefused: `target` is a non-empty folder beprepared did not write (left untouched).
        ExportError: the rows cannot be written in this layout (the message names the property).
    """
    folders, files = LAYOUTS[node.layout]
    spec = CaptionSpec.from_node(node)
    entries = plan_entries(rows, spec, folders(node))
    planned = files(entries, node, target)
    report = ExportReport(
        target, layout=node.layout, images=len(entries), captions=sum(1 for e in entries if e.captions)
    )
    if node.stats:
        report.stats = compute_stats(entries, spec.tags_prop, node.layout)
        planned += stats_files(title, report.stats)
    planned.append(text_file(GALLERY, render_gallery(title, entries, STATS_HTML if node.stats else None)))
    return write_export(target, planned, objects, report)


def stats_files(title: str, stats: dict[str, Any]) -> list[PlannedFile]:
    """`dataset_stats.html` (for people) and `.beprepared-stats.json` (for the dataset_stats asset)."""
    page = render_report(title, stats, render_chart(stats))
    data = json.dumps(stats, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    return [text_file(STATS_HTML, page), text_file(STATS_JSON, data)]


def read_stats(target: Path) -> dict[str, Any] | None:
    """The statistics the last export wrote into `target`, or None when there are none."""
    try:
        return json.loads((target / STATS_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
