"""The original's export layout, written incrementally and atomically.

`<basename[:80]>_<objectid><_n><ext>` images (extension of the real format), `<stem>.txt` captions,
`<stem>.json` sidecars of public properties, and `index.html`. The folder is built beside the target, files
unchanged since the last export are hard-linked from it instead of rewritten, and the new folder replaces the
old one in one atomic exchange, so a reader never sees half an export. A folder without our manifest is never
replaced or deleted.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beprepared_dagster.errors import BeprepareError
from beprepared_dagster.export.gallery import render_gallery
from beprepared_dagster.store.stages import Row

MANIFEST = ".beprepared-export.json"
_BASENAME_CHARS, _BASENAME_BYTES = 80, 150


class ExportRefused(BeprepareError):
    """The target folder exists and was not created by beprepared."""


@dataclass
class PlannedFile:
    name: str
    sha256: str
    object_id: str | None = None
    text: str | None = None


@dataclass
class ExportReport:
    path: Path
    images: int = 0
    captions: int = 0
    written: int = 0
    linked: int = 0
    removed: int = 0
    unchanged: bool = False
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)
    object_ids: list[str] = field(default_factory=list)


def plan_files(rows: list[Row], captions: bool, sidecars: bool, caption_ext: str) -> list[PlannedFile]:
    """Decide every file of the export from the kept rows (sorted for a stable `_n` numbering)."""
    planned: list[PlannedFile] = []
    counters: dict[tuple[str, str], int] = {}
    for row in sorted(rows, key=lambda r: (r.props.get("original_path", ""), r.image_id, r.seq)):
        props = row.props
        base = _basename(props.get("original_path") or row.image_id)
        object_id = props["objectid"]
        n = counters.get((base, object_id), 0)
        counters[(base, object_id)] = n + 1
        stem = f"{base}_{object_id}{f'_{n}' if n else ''}"
        planned.append(PlannedFile(f"{stem}{props.get('ext', '.bin')}", object_id, object_id=object_id))
        caption = props.get("caption")
        if captions and caption:
            planned.append(_text(f"{stem}{caption_ext}", str(caption)))
        if sidecars:
            public = {k: v for k, v in sorted(props.items()) if not k.startswith("_")}
            planned.append(_text(f"{stem}.json", json.dumps(public, indent=2, ensure_ascii=False) + "\n"))
    return planned


def _text(name: str, text: str) -> PlannedFile:
    return PlannedFile(name, hashlib.sha256(text.encode()).hexdigest(), text=text)


def _basename(path: str) -> str:
    """The original's `basename[:80]`, also capped in bytes so long unicode names stay under NAME_MAX."""
    base = os.path.basename(path)[:_BASENAME_CHARS]
    while len(base.encode()) > _BASENAME_BYTES:
        base = base[:-1]
    return base


def export_folder(target: Path, rows: list[Row], objects: Any, save: Any, title: str) -> ExportReport:
    """Write `rows` (kept images) to `target`; rewrite nothing if the export would be identical."""
    started = time.perf_counter()
    report = ExportReport(target, images=len(rows))
    planned = plan_files(rows, save.captions, save.sidecars, save.caption_ext)
    gallery = render_gallery(title, rows, planned, save.caption_ext)
    planned.append(_text("index.html", gallery))
    report.captions = sum(1 for p in planned if p.name.endswith(save.caption_ext) and p.text is not None)
    report.files = [p.name for p in planned]
    report.object_ids = list(dict.fromkeys(p.object_id for p in planned if p.object_id))
    manifest = {p.name: p.sha256 for p in planned}
    old = _read_manifest(target)
    if old == manifest and all((target / name).is_file() for name in manifest):
        report.unchanged = True
        report.seconds = time.perf_counter() - started
        return report
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    _chmod_like_mkdir(staging)  # mkdtemp makes 0700; the export is a normal folder (umask applies)
    try:
        for item in planned:
            _place(item, staging / item.name, target, old or {}, objects, report)
        (staging / MANIFEST).write_text(json.dumps({"files": manifest}, indent=1, sort_keys=True))
        report.removed = len(set(old or {}) - set(manifest))
        _swap_in(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    report.seconds = time.perf_counter() - started
    return report


def _place(
    item: PlannedFile, dest: Path, target: Path, old: dict[str, str], objects: Any, report: ExportReport
) -> None:
    if old.get(item.name) == item.sha256 and (target / item.name).is_file():
        try:
            os.link(target / item.name, dest)  # our own previous export: unchanged, not rewritten
            report.linked += 1
            return
        except OSError:
            pass
    if item.object_id is not None:
        shutil.copyfile(objects.path(item.object_id), dest)
    else:
        dest.write_text(item.text or "", encoding="utf-8")
    report.written += 1


def _chmod_like_mkdir(path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o777 & ~umask)


def _read_manifest(target: Path) -> dict[str, str] | None:
    """The previous export's manifest; refuses a non-empty folder that has none."""
    if not target.exists():
        return None
    if not target.is_dir():
        raise ExportRefused(f"Save: {target} exists and is not a folder")
    marker = target / MANIFEST
    if not marker.is_file():
        if any(target.iterdir()):
            raise ExportRefused(
                f"Save: refusing to replace {target}: it is not empty and was not written by beprepared "
                f"(no {MANIFEST}). Choose another folder or empty it."
            )
        return None
    try:
        return dict(json.loads(marker.read_text())["files"])
    except (ValueError, KeyError, TypeError):
        raise ExportRefused(f"Save: {marker} is damaged; delete the folder to export again") from None


def _swap_in(staging: Path, target: Path) -> None:
    """Make `staging` the new `target` atomically; the old content (if any) ends up in `staging`."""
    if not target.exists():
        os.rename(staging, target)
        return
    if _rename_exchange(staging, target):
        shutil.rmtree(staging)
        return
    retired = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.rename(target, retired)  # fallback where RENAME_EXCHANGE is unavailable: a moment without `target`
    os.rename(staging, target)
    shutil.rmtree(retired)


def _rename_exchange(a: Path, b: Path) -> bool:
    """Linux renameat2(RENAME_EXCHANGE): swap two paths in one step."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return result == 0
