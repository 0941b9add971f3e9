"""From kept rows to the image files of an export: naming, grouping and the multi-caption modes.

Every format names images the original's way, `<basename[:80]>_<objectid><_n><ext>`, inside a folder the
format chooses (kohya's `N_concept/`, the image folder's `train/`), so names are stable across exports and
different images never collide.

Several captions for one image (a list-valued caption, or several rows of one image such as Concat branches
or caption variations) are exported per `multi_caption`:

- `files`: one copy of the image (`_1`, `_2`…) per caption, each with its own caption file: every trainer
  reads it, and every caption is trained every epoch (the image counts once per caption);
- `lines`: one image, one caption file with one caption per line: sd-scripts with `enable_wildcard`,
  OneTrainer and SimpleTuner pick a random line per step/epoch (sd-scripts without it reads only line 1);
- `first`: one image with its first caption.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from beprepared_dagster.export.captions import CaptionSpec, render_captions
from beprepared_dagster.store.stages import Row

_BASENAME_CHARS, _BASENAME_BYTES = 80, 150
# Extra training images derived from an image (Flip(mode="add")): a list of {suffix, augmentation, source,
# objectid, ext, format, width, height}. Hidden (`_`), so the image's own sidecar does not repeat it.
AUGMENTATIONS = "_augmentations"


@dataclass
class Entry:
    """One exported image file and the captions that go with it."""

    folder: str
    stem: str
    ext: str
    object_id: str
    image_id: str
    props: dict[str, Any]
    captions: list[str] = field(default_factory=list)

    @property
    def image(self) -> str:
        """The image's path relative to the export folder."""
        return self.sibling(self.ext)

    @functools.cached_property
    def props_json(self) -> str:
        """The public properties as indented JSON: the `.json` sidecar's text and the gallery card's, made
        once per image."""
        from beprepared_dagster.export.jsontext import pretty

        return pretty(public_props(self.props), 2)

    def sibling(self, suffix: str) -> str:
        """A file next to the image with the same stem, e.g. its `.txt` caption."""
        return f"{self.folder}/{self.stem}{suffix}" if self.folder else f"{self.stem}{suffix}"


def row_order(row: Row) -> tuple[str, str, int]:
    """The export order: by source path, then identity, then seq (stable `_n` numbering)."""
    return (row.props.get("original_path", ""), row.image_id, row.seq)


def plan_entries(
    rows: list[Row], spec: CaptionSpec, folder_of: Callable[[dict[str, Any]], str] | None = None
) -> list[Entry]:
    """Every image file of the export, captions rendered, in a stable order."""
    groups: dict[tuple[str, str, str], list[Row]] = {}
    for row in sorted(rows, key=row_order):
        folder = folder_of(row.props) if folder_of else ""
        groups.setdefault((folder, row.image_id, row.props["objectid"]), []).append(row)
    counters: dict[tuple[str, str, str], int] = {}
    entries = []
    for (folder, image_id, object_id), group in groups.items():
        for row, captions in _units(group, spec):
            base = basename(row.props.get("original_path") or image_id)
            n = counters.get((folder, base, object_id), 0)
            counters[(folder, base, object_id)] = n + 1
            stem = f"{base}_{object_id}{f'_{n}' if n else ''}"
            ext = row.props.get("ext", ".bin")
            entry = Entry(folder, stem, ext, object_id, image_id, dict(row.props), captions)
            entries.append(entry)
            if row.props.get(AUGMENTATIONS):  # most images have none
                entries += augmented(entry)
    return entries


def augmented(entry: Entry) -> list[Entry]:
    """The extra training images a node added to this one (`Flip(mode="add")`): `<stem><suffix><ext>` beside
    it, with the same captions; their sidecar properties say what they derive from.

    Raises:
        ExportError: the image's bytes changed after the copy was made (a pixel node after Flip).
    """
    from beprepared_dagster.export.atomic import ExportError

    extras = []
    for extra in entry.props.get(AUGMENTATIONS) or ():
        if extra.get("source") != entry.object_id:
            raise ExportError(
                f"{entry.props.get('original_path', entry.image_id)}: its {extra.get('augmentation')} copy "
                "was made from other pixels than the image now has; put Flip(mode='add') after every node "
                "that changes pixels"
            )
        props = {k: v for k, v in entry.props.items() if k != AUGMENTATIONS}
        props.update({k: extra[k] for k in ("objectid", "ext", "format", "width", "height")})
        props.update(derived_from=f"{entry.stem}{entry.ext}", augmentation=extra["augmentation"])
        stem = f"{entry.stem}{extra['suffix']}"
        extras.append(
            Entry(entry.folder, stem, extra["ext"], extra["objectid"], entry.image_id, props, entry.captions)
        )
    return extras


def _units(group: list[Row], spec: CaptionSpec) -> list[tuple[Row, list[str]]]:
    """The image files one (folder, image, bytes) group becomes, with their captions."""
    if spec.multi_caption == "files":
        units: list[tuple[Row, list[str]]] = []
        for row in group:
            captions = render_captions(row.props, spec)
            if captions:
                units.extend((row, [c]) for c in captions)
            else:
                units.append((row, []))
        return units
    captions = list(dict.fromkeys(c for row in group for c in render_captions(row.props, spec)))
    return [(group[0], captions if spec.multi_caption == "lines" else captions[:1])]


def basename(path: str) -> str:
    """The original's `basename[:80]`, also capped in bytes so long unicode names stay under NAME_MAX."""
    base = os.path.basename(path)[:_BASENAME_CHARS]
    while len(base.encode()) > _BASENAME_BYTES:
        base = base[:-1]
    return base


def public_props(props: dict[str, Any]) -> dict[str, Any]:
    """The properties a sidecar or gallery shows: every name not starting with `_`, sorted; embedding
    references (ClipEmbed's vectors, stored apart) are left out too."""
    from beprepared_dagster.store.embeddings import is_ref

    return {
        k: v
        for k, v in sorted(props.items())
        if not k.startswith("_") and (type(v) in _SCALARS or not is_ref(v))  # scalars: no abc checks
    }


_SCALARS = (str, int, float, bool, type(None))
