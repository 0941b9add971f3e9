"""The machinery every export format shares: incremental, atomic, and never touching a folder we don't own.

A format plans its files (`PlannedFile`: a path relative to the export folder and either an object id or a
text). `write_export` builds the new folder beside the target, hard-links the files whose content is unchanged
since the last export (the manifest `.beprepared-export.json` records each file's SHA-256), writes the rest,
and swaps the new folder in with one `renameat2(RENAME_EXCHANGE)`, so a reader never sees half an export and a
failure leaves the previous export byte-identical. An export identical to the last one writes nothing. A
non-empty folder without our manifest is never replaced.
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
from pathlib import Path, PurePosixPath
from typing import Any

from beprepared_dagster.errors import BeprepareError

MANIFEST = ".beprepared-export.json"


class ExportRefused(BeprepareError):
    """The target folder exists and was not created by beprepared (or its manifest is damaged)."""


class ExportError(BeprepareError):
    """The export cannot be planned (e.g. inconsistent property types for a metadata column)."""


@dataclass
class PlannedFile:
    """One file of an export: `name` is a relative POSIX path; the content is an object or a text."""

    name: str
    sha256: str
    object_id: str | None = None
    text: str | None = None


def text_file(name: str, text: str) -> PlannedFile:
    """A UTF-8 text file of the export."""
    return PlannedFile(name, hashlib.sha256(text.encode()).hexdigest(), text=text)


def object_file(name: str, object_id: str) -> PlannedFile:
    """A copy of a stored object (its id is the SHA-256 of its bytes)."""
    return PlannedFile(name, object_id, object_id=object_id)


@dataclass
class ExportReport:
    """What an export did: counts for the Dagster metadata and the log."""

    path: Path
    layout: str = "original"
    images: int = 0
    captions: int = 0
    written: int = 0
    linked: int = 0
    removed: int = 0
    unchanged: bool = False
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)
    object_ids: list[str] = field(default_factory=list)
    stats: dict[str, Any] | None = None
    waiting: dict[str, int] = field(default_factory=dict)  # human stage → images not exported yet for it


def write_export(
    target: Path, planned: list[PlannedFile], objects: Any, report: ExportReport
) -> ExportReport:
    """Make `target` hold exactly `planned` (plus the manifest); rewrite nothing if it already does."""
    started = time.perf_counter()
    _check_names(planned)
    report.files = [p.name for p in planned]
    report.object_ids = list(dict.fromkeys(p.object_id for p in planned if p.object_id))
    manifest = {p.name: p.sha256 for p in planned}
    old = read_manifest(target)
    if old == manifest and all((target / name).is_file() for name in manifest):
        report.unchanged = True
        report.seconds = time.perf_counter() - started
        return report
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    _chmod_like_mkdir(staging)  # mkdtemp makes 0700; the export is a normal folder (umask applies)
    try:
        placed: dict[str, Path] = {}
        for item in planned:
            _place(item, staging, target, old or {}, objects, report, placed)
        (staging / MANIFEST).write_text(json.dumps({"files": manifest}, indent=1, sort_keys=True))
        report.removed = len(set(old or {}) - set(manifest))
        _swap_in(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    report.seconds = time.perf_counter() - started
    return report


def _check_names(planned: list[PlannedFile]) -> None:
    seen: set[str] = set()
    for item in planned:
        if not _safe_name(item.name) or item.name == MANIFEST:
            raise ExportError(f"export file name {item.name!r} is not a plain relative path")
        if item.name in seen:
            raise ExportError(f"two files of the export are both named {item.name!r}")
        seen.add(item.name)


def _safe_name(name: str) -> bool:
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts and "\0" not in name


def _place(
    item: PlannedFile,
    staging: Path,
    target: Path,
    old: dict[str, str],
    objects: Any,
    report: ExportReport,
    placed: dict[str, Path],
) -> None:
    dest = staging / item.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    previous = target / item.name
    if old.get(item.name) == item.sha256 and previous.is_file():
        try:
            os.link(previous, dest)  # our own previous export: unchanged, not rewritten
            report.linked += 1
            return
        except OSError:
            pass
    if item.object_id is not None and item.object_id in placed:
        # The same image again (one copy per caption): a second name for the bytes we just wrote.
        os.link(placed[item.object_id], dest)
    elif item.object_id is not None:
        shutil.copyfile(objects.path(item.object_id), dest)
        placed[item.object_id] = dest
    else:
        dest.write_text(item.text or "", encoding="utf-8")
    report.written += 1


def _chmod_like_mkdir(path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o777 & ~umask)


def read_manifest(target: Path) -> dict[str, str] | None:
    """The previous export's manifest (name → SHA-256); refuses a non-empty folder that has none."""
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
        files = dict(json.loads(marker.read_text())["files"])
    except (ValueError, KeyError, TypeError):
        files = None
    if files is None or not all(isinstance(n, str) and _safe_name(n) for n in files):
        raise ExportRefused(f"Save: {marker} is damaged; delete the folder to export again")
    return files


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
