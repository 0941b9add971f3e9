"""Hugging Face `imagefolder` layout (`SaveImageFolder`): `<split>/` images plus `<split>/metadata.jsonl`.

Each JSON line holds `file_name` (relative to the metadata file), the caption column (`text` by default, what
diffusers' example scripts read) and the chosen properties. The images sit under a split folder (`train/`)
because `datasets` ignores a metadata file next to images at the root in some versions (datasets #6442).
Load with `load_dataset("imagefolder", data_dir=<export>)`.

With `multi_caption="lines"` the caption column is a list of strings (diffusers' text-to-image script picks
one at random); otherwise a string. Images without a caption get null. A property column must hold one JSON
type (numbers may mix ints and floats), or Arrow cannot load it: a mix is refused at export time, naming the
property.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from beprepared_dagster.export.atomic import ExportError, PlannedFile, object_file, text_file
from beprepared_dagster.export.entries import Entry

METADATA = "metadata.jsonl"


def imagefolder_files(entries: list[Entry], node: Any, target: Path) -> list[PlannedFile]:
    """The images under `<split>/` and the `metadata.jsonl` beside them."""
    planned = [object_file(e.image, e.object_id) for e in entries]
    _check_column_types(entries, node.properties)
    lines = [json.dumps(_record(e, node), ensure_ascii=False, sort_keys=False) for e in entries]
    planned.append(text_file(f"{node.split}/{METADATA}", "".join(f"{line}\n" for line in lines)))
    return planned


def _record(entry: Entry, node: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"file_name": f"{entry.stem}{entry.ext}"}
    if node.captions:
        if node.multi_caption == "lines":
            record[node.caption_column] = entry.captions or None
        else:
            record[node.caption_column] = entry.captions[0] if entry.captions else None
    for prop in node.properties:
        record[prop] = entry.props.get(prop)
    return record


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    return "object" if isinstance(value, dict) else type(value).__name__


def _check_column_types(entries: list[Entry], properties: list[str]) -> None:
    for prop in properties:
        kinds: dict[str, str] = {}
        for entry in entries:
            value = entry.props.get(prop)
            if value is not None:
                kinds.setdefault(_json_type(value), entry.image)
        if len(kinds) > 1:
            examples = ", ".join(f"{kind} in {name}" for kind, name in sorted(kinds.items()))
            raise ExportError(
                f"SaveImageFolder: property {prop!r} holds values of different types ({examples}); "
                "a metadata.jsonl column needs one type. Leave it out of `properties` or make it uniform."
            )
