"""The original's export layout (`Save`): one flat folder.

`<basename[:80]>_<objectid><_n><ext>` images (extension of the real format), `<stem><caption_ext>` captions
(one caption per line), `<stem>.json` sidecars of public properties, `index.html` and `dataset_stats.html`.
Written incrementally and atomically by `export.atomic`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from beprepared_dagster.export.atomic import (
    MANIFEST,
    ExportRefused,
    ExportReport,
    PlannedFile,
    object_file,
    text_file,
)
from beprepared_dagster.export.captions import caption_file_text
from beprepared_dagster.export.entries import Entry
from beprepared_dagster.store.stages import Row

__all__ = ["MANIFEST", "ExportRefused", "export_folder", "image_and_caption_files"]


def image_and_caption_files(entries: list[Entry], node: Any) -> list[PlannedFile]:
    """Each image, its caption file (when it has captions) and, if asked, its `.json` sidecar."""
    planned = []
    for entry in entries:
        planned.append(object_file(entry.image, entry.object_id))
        if entry.captions:
            planned.append(text_file(entry.sibling(node.caption_ext), caption_file_text(entry.captions)))
        if node.sidecars:
            planned.append(text_file(entry.sibling(".json"), entry.props_json + "\n"))
    return planned


def original_files(entries: list[Entry], node: Any, target: Path) -> list[PlannedFile]:
    """The original layout: everything side by side in the export folder."""
    return image_and_caption_files(entries, node)


def export_folder(target: Path, rows: list[Row], objects: Any, save: Any, title: str) -> ExportReport:
    """Write `rows` (kept images) to `target` in `save`'s layout; see `export.dataset.export_dataset`."""
    from beprepared_dagster.export.dataset import export_dataset

    return export_dataset(target, rows, objects, save, title)
