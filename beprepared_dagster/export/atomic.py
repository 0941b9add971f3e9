"""The machinery every export format shares: incremental, atomic, and never touching a folder we don't own.

A format plans its files (`PlannedFile`: a path relative to the export folder and either an object id or a
text). `write_export` builds the new folder beside the target, hard-links the files whose content is unchanged
since the last export (the manifest `.beprepared-export.json` records each file's SHA-256, size and mtime, so
a file edited in place in the export is rewritten, not kept), writes the rest, and swaps the new folder in
with one `renameat2(RENAME_EXCHANGE)`, so a reader never sees half an export and a failure leaves the previous
export byte-identical. A small update (at most a tenth of the files, e.g. a few new images) is prepared the
same way beside the export, then renamed into it file by file, captions before images, manifest last: a
failure while preparing still leaves the export byte-identical, and the cost follows the change, not the
size of the export. An export identical to the last one writes nothing. A non-empty folder without our
manifest is never replaced.

Image bytes: an object the store holds itself (derived bytes, copies) is hard-linked (stored objects are
read-only and sealed, see `store.objects`); a user's source file is cloned (reflink) where the file system
can, else copied, and never hard-linked, so nothing done to the export can reach the user's file.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
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


@dataclass
class Previous:
    """The last export in a folder, as its manifest describes it (`read_previous`): `files` (name → SHA-256;
    None when the folder has no export yet) and the whole manifest `document`."""

    files: dict[str, str] | None
    document: dict[str, Any]


def read_previous(target: Path) -> Previous:
    """The folder's last export, its manifest parsed once (15,000 names at 5,000 images).

    Raises:
        ExportRefused: a non-empty folder we did not write, or a damaged manifest.
    """
    document: dict[str, Any] = {}
    files = read_manifest(target, document)
    return Previous(files, document)


def write_export(
    target: Path,
    planned: list[PlannedFile],
    objects: Any,
    report: ExportReport,
    inputs: str | None = None,
    previous: Previous | None = None,
) -> ExportReport:
    """Make `target` hold exactly `planned` (plus the manifest); rewrite nothing if it already does.
    `previous`: the folder's manifest when the caller already read it (`read_previous`)."""
    started = time.perf_counter()
    report.files = _checked_names(planned)
    report.object_ids = list(dict.fromkeys(p.object_id for p in planned if p.object_id))
    manifest = {p.name: p.sha256 for p in planned}
    previous = previous or read_previous(target)
    old, state = previous.files, previous.document
    stats = file_stats(state)
    summary = {"images": report.images, "captions": report.captions, "object_ids": report.object_ids[:12]}
    if old == manifest and not edited_files(target, manifest, stats):
        report.unchanged = True
        if inputs is not None and state.get("inputs") != inputs:  # same files, new inputs
            _write_manifest(target, manifest, stats, inputs, summary)
        report.seconds = time.perf_counter() - started
        return report
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    _chmod_like_mkdir(staging)  # mkdtemp makes 0700; the export is a normal folder (umask applies)
    try:
        changed = _update_in_place(target, staging, planned, old, stats, objects, report) if old else None
        if changed is not None:  # the unchanged files keep the size and mtime just checked
            kept = {n: stats[n] for n in manifest if n not in changed and n in stats}
            fresh = _stats_of(target, [n for n in manifest if n not in kept])
            _write_manifest(target, manifest, {**kept, **fresh}, inputs, summary)
            report.seconds = time.perf_counter() - started
            return report
        _place_all(planned, staging, target, old or {}, stats, objects, report)
        _write_manifest(staging, manifest, _stats_of(staging, manifest), inputs, summary)
        report.removed = len(set(old or {}) - set(manifest))
        _swap_in(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    report.seconds = time.perf_counter() - started
    return report


# An update touching at most this share of the files (and at least up to SMALL_UPDATE_MIN of them) is
# applied in place instead of rebuilding the whole folder: +10 images in a 50,000-image export moves ~20 files
# instead of re-linking 100,000.
SMALL_UPDATE_SHARE, SMALL_UPDATE_MIN = 0.1, 64


def _update_in_place(
    target: Path,
    staging: Path,
    planned: list[PlannedFile],
    old: dict[str, str],
    stats: dict[str, list[int]],
    objects: Any,
    report: ExportReport,
) -> set[str] | None:
    """Apply a small update to the existing export: the names written, or None (nothing touched) when it is
    not a small one.

    The new and changed files are placed in `staging` first, so a failure there (a full disk, a missing
    object) leaves the export byte-identical. Then each is renamed over its name in `target` (captions and
    other texts before images, so a trainer never finds a new image without its caption), the names no
    longer planned and any stray file are removed, and the manifest is written last. Only that commit step,
    renames and unlinks on one file system, touches the export; a crash in it leaves files the next run
    reconciles (the old manifest does not list them as unchanged)."""
    planned_names = {p.name for p in planned}
    present = _export_files(target)
    stray = present - planned_names
    changed: list[PlannedFile] = []
    same: list[PlannedFile] = []  # the manifest's content under a name still present: unless edited since
    for p in planned:
        (same if old.get(p.name) == p.sha256 and p.name in present else changed).append(p)
    edited = set(edited_files(target, [p.name for p in same], stats))
    changed += [p for p in same if p.name in edited]
    if len(changed) + len(stray) > max(SMALL_UPDATE_MIN, SMALL_UPDATE_SHARE * len(planned)):
        return None
    for item in changed:  # a name whose place is a folder, or under a file: the full rebuild handles it
        dest = target / item.name
        if dest.is_dir() or any(
            parent.is_file() for parent in dest.relative_to(target).parents if str(parent) != "."
        ):
            return None
    _place_all(changed, staging, target, {}, {}, objects, report)
    for item in sorted(changed, key=lambda p: p.object_id is not None):  # texts first, then images
        dest = target / item.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / item.name, dest)
    for name in stray:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target / name)
        _remove_empty_parents(target, target / name)
    report.linked += len(planned) - len(changed)
    report.removed = len(stray)
    return {p.name for p in changed}


def edited_files(target: Path, names: Iterable[str], stats: dict[str, list[int]]) -> list[str]:
    """The names whose file in `target` is gone or no longer as the manifest recorded it (`unchanged_file`
    for a whole export at once: one stat each in a tight loop, 13,000 at 5,000 images)."""
    base, stat, edited = str(target), os.stat, []  # strings, not Paths
    for name in names:
        try:
            st = stat(f"{base}/{name}")
        except OSError:
            edited.append(name)
            continue
        recorded = stats.get(name)
        if recorded is not None and (st.st_size != recorded[0] or st.st_mtime_ns != recorded[1]):
            edited.append(name)
    return edited


def _export_files(target: Path) -> set[str]:
    """Every file under `target` (relative POSIX names), the manifest and its temporary file excepted."""
    found: set[str] = set()
    for root, _, names in os.walk(target):
        rel = os.path.relpath(root, target)
        for name in names:
            found.add(name if rel == "." else f"{Path(rel).as_posix()}/{name}")
    return found - {MANIFEST, f"{MANIFEST}.tmp"}


def _remove_empty_parents(target: Path, path: Path) -> None:
    for parent in path.relative_to(target).parents:
        if str(parent) == ".":
            return
        try:
            (target / parent).rmdir()
        except OSError:
            return


def _stats_of(folder: Path, names: Iterable[str]) -> dict[str, list[int]]:
    """(size, mtime) of each named file as it now is in `folder`."""
    out, base = {}, str(folder)  # strings, not Paths: thousands per export
    for name in names:
        st = os.stat(f"{base}/{name}")
        out[name] = [st.st_size, st.st_mtime_ns]
    return out


def _checked_names(planned: list[PlannedFile]) -> list[str]:
    """The planned names, each a plain relative path and none twice (or the first that is not)."""
    names = [item.name for item in planned]
    bad = next((n for n in names if n == MANIFEST or not _safe_name(n)), None)
    if bad is not None:
        raise ExportError(f"export file name {bad!r} is not a plain relative path")
    if len(set(names)) != len(names):
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise ExportError(f"two files of the export are both named {name!r}")
            seen.add(name)
    return names


def _safe_name(name: str) -> bool:
    """A plain relative POSIX path: not empty, not absolute, no `..` part, no NUL."""
    return bool(name) and name[0] != "/" and "\0" not in name and "/../" not in f"/{name}/"


def _place_all(
    planned: list[PlannedFile],
    staging: Path,
    target: Path,
    old: dict[str, str],
    stats: dict[str, list[int]],
    objects: Any,
    report: ExportReport,
) -> None:
    """Place every file: the first of each image and every text on a thread pool (creating files is
    system calls, which release the GIL), then the further names of an image (links to its first)."""
    from concurrent.futures import ThreadPoolExecutor

    for folder in sorted({os.path.dirname(item.name) for item in planned} - {""}):
        (staging / folder).mkdir(parents=True, exist_ok=True)
    placed: dict[str, str] = {}
    first, later, seen = [], [], set()
    for item in planned:
        if item.object_id is None or item.object_id not in seen:
            first.append(item)
            seen.add(item.object_id)
        else:
            later.append(item)

    def some(items: list[PlannedFile]) -> list[str]:
        return [_place(item, staging, target, old, stats, objects, placed) for item in items]

    # A few dozen tasks, not one per file: a task's hand-over costs about what placing a small file does.
    workers = min(4, os.cpu_count() or 2)
    size = max(16, -(-len(first) // (workers * 8)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="export") as pool:
        parts = pool.map(some, [first[i : i + size] for i in range(0, len(first), size)])
        outcomes = [outcome for part in parts for outcome in part]
    outcomes += some(later)
    report.linked += outcomes.count("linked")
    report.written += outcomes.count("written")


def _place(
    item: PlannedFile,
    staging: Path,
    target: Path,
    old: dict[str, str],
    stats: dict[str, list[int]],
    objects: Any,
    placed: dict[str, str],
) -> str:
    """Put one file in the staging folder (its folder exists); "linked" when reused from the last export."""
    dest = f"{staging}/{item.name}"  # strings: thousands per export
    previous = f"{target}/{item.name}"
    if old.get(item.name) == item.sha256 and unchanged_file(previous, stats.get(item.name)):
        try:
            os.link(previous, dest)  # our own previous export: unchanged, not rewritten
            return "linked"
        except OSError:
            pass
    if item.object_id is not None and item.object_id in placed:
        # The same image again (one copy per caption): a second name for the bytes we just wrote.
        os.link(placed[item.object_id], dest)
    elif item.object_id is not None:
        place_object(objects, item.object_id, dest)
        placed[item.object_id] = dest
    else:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # os-level: thousands per export
        try:
            data = memoryview((item.text or "").encode("utf-8"))
            while data:
                data = data[os.write(fd, data) :]
        finally:
            os.close(fd)
    return "written"


def _write_manifest(
    folder: Path, manifest: dict[str, str], stats: dict, inputs: str | None, summary: dict[str, Any]
) -> None:
    """The manifest: each file's SHA-256, size and mtime, and what the export was made from (so an unchanged
    re-run can skip planning it: `export.dataset.unchanged_export`)."""
    state = {"files": manifest, "stat": stats}
    if inputs is not None:
        state.update(inputs=inputs, summary=summary)
    tmp = folder / f"{MANIFEST}.tmp"
    # One line, in the planned order (deterministic; sorting 15,000 names cost more than the encoding).
    tmp.write_text(json.dumps(state))
    os.replace(tmp, folder / MANIFEST)


def unchanged_file(path: str | Path, stat: list[int] | None) -> bool:
    """Whether an export file is as we wrote it: the size and mtime the manifest recorded (a manifest from
    before they were recorded only proves the file exists)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat is None or [st.st_size, st.st_mtime_ns] == list(stat)


def place_object(objects: Any, object_id: str, dest: str | Path) -> None:
    """Put an object's bytes at `dest`: a hard link to the store's own read-only file, else a reflink or a
    copy of the user's source file (checked before and after the copy; never a link to it)."""
    stored = objects.stored_path(object_id)
    if stored is not None and not objects.is_source(object_id):
        try:
            os.link(objects.path(object_id), dest)  # checked: never a stored object edited in place
            return
        except OSError:
            pass  # another file system, or no hard links there: copy
    with objects.open_checked(object_id) as src:
        before = os.fstat(src.fileno())
        with open(dest, "wb") as dst:
            _clone_or_copy(src, dst, before.st_size)
        after = os.fstat(src.fileno())
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        os.unlink(dest)
        raise ExportError(f"{objects.path(object_id)} changed while it was being exported; run again")


def _clone_or_copy(src: Any, dst: Any, size: int) -> None:
    import fcntl

    try:
        fcntl.ioctl(dst.fileno(), 0x40049409, src.fileno())  # FICLONE: copy-on-write, no bytes copied
        return
    except OSError:
        pass
    offset = 0
    while offset < size:
        try:
            sent = os.copy_file_range(src.fileno(), dst.fileno(), size - offset, offset, offset)
        except OSError:
            src.seek(offset)
            shutil.copyfileobj(src, dst, 1 << 20)
            return
        if sent == 0:
            break
        offset += sent


def _chmod_like_mkdir(path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o777 & ~umask)


def file_stats(state: dict[str, Any]) -> dict[str, list[int]]:
    """(size, mtime) per file from a manifest document (`read_manifest`'s `state`); empty for a manifest
    written before they were kept."""
    stats = state.get("stat") or {}
    return (
        {n: v for n, v in stats.items() if isinstance(v, list) and len(v) == 2}
        if isinstance(stats, dict)
        else {}
    )


def read_manifest(target: Path, state: dict[str, Any] | None = None) -> dict[str, str] | None:
    """The previous export's manifest (name → SHA-256); refuses a non-empty folder that has none. `state`,
    when given, receives the whole manifest document (parsed once: 15,000 names at 5,000 images)."""
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
        document = json.loads(marker.read_text())
        files = dict(document["files"])
    except (ValueError, KeyError, TypeError):
        files = None
    if files is None or not all(isinstance(n, str) and _safe_name(n) for n in files):
        raise ExportRefused(f"Save: {marker} is damaged; delete the folder to export again")
    if state is not None:
        state.update(document)
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
