"""One entry point for every Save node: plan the layout's files, add the gallery and the statistics page,
and write them all with the shared incremental/atomic writer (`export.atomic`)."""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from beprepared_dagster.export.atomic import (
    ExportRefused,
    ExportReport,
    PlannedFile,
    Previous,
    edited_files,
    file_stats,
    read_previous,
    text_file,
    write_export,
)
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
    inputs = inputs_digest(rows, node, title)
    previous = read_previous(target)
    quick = unchanged_export(target, inputs, node, previous)
    if quick is not None:
        return quick
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
    return write_export(target, planned, objects, report, inputs=inputs, previous=previous)


def inputs_digest(rows: list[Row], node: Any, title: str) -> str:
    """Everything an export is made from: the kept rows, the Save node's parameters, the title and the export
    code itself (so an upgrade that changes a format rewrites the export)."""
    digest = hashlib.sha256(_code_digest().encode())
    digest.update(json.dumps([type(node).__name__, repr(node), title], sort_keys=True, default=str).encode())
    # A row read for an export carries its stored JSON text: hashed as it is, not re-serialized (~12 µs a row).
    # The same properties stored in another key order would hash differently: the export is then planned
    # again once and writes only what differs (nodes build their properties in a fixed order).
    digest.update(
        "".join(
            f"{row.image_id}\0{row.seq}\0"
            f"{row.text if row.text is not None else json.dumps(row.props, sort_keys=True, default=str)}\n"
            for row in rows
        ).encode()
    )
    return digest.hexdigest()


@functools.cache
def _code_digest() -> str:
    folder = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".html", ".css", ".js", ".json", ".txt"):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def unchanged_export(
    target: Path, inputs: str, node: Any, previous: Previous | None = None
) -> ExportReport | None:
    """The last export's report when it was made from exactly these inputs and every file is still as it
    was written (size and mtime); None otherwise (then the export is planned and written as usual).
    `previous`: the folder's manifest when the caller already read it."""
    started = time.perf_counter()
    try:
        previous = previous or read_previous(target)
    except ExportRefused:
        return None  # not ours: write_export says so
    manifest, state = previous.files or {}, previous.document
    if state.get("inputs") != inputs or not isinstance(state.get("summary"), dict):
        return None
    if not manifest or edited_files(target, manifest, file_stats(state)):
        return None
    summary = state["summary"]
    report = ExportReport(target, layout=node.layout, unchanged=True, files=list(manifest))
    report.images, report.captions = int(summary.get("images", 0)), int(summary.get("captions", 0))
    report.object_ids = [o for o in summary.get("object_ids", []) if isinstance(o, str)]
    report.stats = read_stats(target) if node.stats else None
    report.seconds = time.perf_counter() - started
    return report


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
