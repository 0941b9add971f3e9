"""Load: ingest every image under a folder (recursively). Identity = SHA-256 of the file's bytes.

Discovery (`scan_folder`) walks the folder, reuses the hash of any file whose size and mtime are unchanged,
and hashes the rest in parallel. The Load stage then makes each image an object of the store (a reference
to the file, a copy-on-write clone, or a private copy: `store.objects`) and probes it
(`nodes.imaging.probe_file`), caching the probe per object id.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from beprepared_dagster.nodes.base import SourceNode
from beprepared_dagster.nodes.imaging import IMAGE_EXTENSIONS, VERIFY_MODES
from beprepared_dagster.store.files import FileEntry
from beprepared_dagster.store.objects import hash_file
from beprepared_dagster.store.workspace import resolve_in_workflow

PROBE_VERSION = 2


def probe_fingerprint(verify: str = "structure") -> str:
    """The probe depends only on the bytes (and how hard it looks), so its cache key is shared by every Load
    of every workflow."""
    spec = {"node": "Load.probe", "version": PROBE_VERSION, "verify": verify}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


PROBE_FINGERPRINT = probe_fingerprint()


class Load(SourceNode):
    """Recursively ingest the images under `dir` (`.jpg .jpeg .png .webp .gif .bmp .tif .tiff`, any case).

    Args:
        dir: the folder to read. A relative path is relative to the workflow file's folder (the current
            directory outside a workflow file).
        verify: how each image is checked before it is used. "structure" (default): the header and the
            file's end (a file cut short, the usual damage of an interrupted copy or download, is rejected),
            decoding only when the end cannot tell; "decode": every byte is decoded (also catches damage in
            the middle of the compressed data; several times slower on large photos).
    """

    version: ClassVar[int] = 1
    description: ClassVar[str] = "Images found under {dir}, checked and referenced by the workspace."
    writes: ClassVar[tuple[str, ...]] = (
        "objectid",
        "original_path",
        "width",
        "height",
        "format",
        "ext",
        "mode",
        "orientation",
    )

    def __init__(self, dir: str | os.PathLike, verify: str = "structure") -> None:
        if not isinstance(dir, str | os.PathLike) or not str(dir):
            raise ValueError(f"dir must be a folder path, got {dir!r}")
        if verify not in VERIFY_MODES:
            raise ValueError(f"verify={verify!r} is not accepted; use 'structure' or 'decode'")
        self.dir = resolve_in_workflow(dir)
        self.verify = verify
        self.params["dir"] = str(self.dir)
        if verify != "structure":  # the default keeps the fingerprint of workflows written before it existed
            self.params["verify"] = verify

    def check_folder(self) -> None:
        """Raise `FileNotFoundError` / `NotADirectoryError` naming the folder when it cannot be scanned."""
        if not self.dir.exists():
            raise FileNotFoundError(f"Load: folder {self.dir} does not exist")
        if not self.dir.is_dir():
            raise NotADirectoryError(f"Load: {self.dir} is not a folder")


@dataclass
class ScanResult:
    """What a scan of one folder found: index changes, unreadable files, and hashes in discovery order."""

    changed: list[FileEntry] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    files: int = 0
    hashed: int = 0


# path → (size, mtime_ns, sha256, error) of files hashed ahead of a scan (`prehash`)
Hashed = dict[str, tuple[int, int, str | None, str | None]]


def scan_folder(
    root: Path,
    index: dict[str, FileEntry],
    log: Callable[[str], None] | None = None,
    threads: int = 4,
    known: Hashed | None = None,
) -> ScanResult:
    """Walk `root`, compare with the previous `index`, hash new or changed files in parallel (a file in
    `known` with the size and mtime it has now is not hashed again)."""
    result = ScanResult()
    seen = _candidates(root, result.problems)
    result.files = len(seen)
    todo = _to_hash(seen, index)
    known = known or {}
    digests: dict[str, tuple[str | None, str | None]] = {}
    unknown = []
    for path, st in todo:
        ahead = known.get(path)
        if ahead is not None and ahead[:2] == (st.st_size, st.st_mtime_ns):
            digests[path] = ahead[2], ahead[3]
        else:
            unknown.append(path)
    if unknown:  # only these go to the threads (handing over a task costs about what a known answer does)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            digests.update(zip(unknown, pool.map(_hash_or_error, unknown), strict=True))
    for path, st in todo:
        digest, error = digests[path]
        entry = FileEntry(path, st.st_size, st.st_mtime_ns, digest, error)
        old = index.get(path)
        if error:
            result.problems.append((path, error))
            if old and old.error == error and old.mtime_ns == st.st_mtime_ns:
                continue  # already reported
        result.changed.append(entry)
    result.hashed = len(todo)
    for path, error in result.problems:
        if path not in seen:
            result.changed.append(FileEntry(path, None, None, None, error))
    problem_paths = {p for p, _ in result.problems}
    result.removed = sorted(p for p in index if p not in seen and p not in problem_paths)
    hashes = {e.path: e.sha256 for e in index.values() if e.path in seen}
    hashes.update({e.path: e.sha256 for e in result.changed})
    ordered: dict[str, None] = {}
    for path in sorted(hashes):
        if hashes[path]:
            ordered.setdefault(hashes[path], None)
    result.hashes = list(ordered)
    if log:
        _log_scan(root, index, result, log)
    return result


def prehash(root: Path, index: dict[str, FileEntry], processes: int = 1) -> Hashed:
    """Hash what a scan of `root` would hash (files `index` does not know at their size and mtime), so a
    later `scan_folder(..., known=...)` finds them done: started while the orchestration is still loading.

    The hashing runs in `processes` child interpreters (`hash_in_children`), not in threads of this one: the
    orchestration's imports hold the interpreter lock nearly all the time, and hashing threads waiting for
    it between reads took ~1.8 s for 5,000 photos instead of ~0.55 s alone (2-core benchmark machine)."""
    seen = _candidates(root, [])
    todo = _to_hash(seen, index)
    digests = hash_in_children([p for p, _ in todo], processes)
    return {p: (st.st_size, st.st_mtime_ns, *d) for (p, st), d in zip(todo, digests, strict=True)}


# A child interpreter's whole program: NUL-separated paths in, one "=<sha256>" or "!<problem>" per path out.
_HASHER = """
import hashlib, sys
out = sys.stdout.buffer
for path in sys.stdin.buffer.read().split(b"\\0")[:-1]:
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        out.write(b"=" + digest.hexdigest().encode())
    except PermissionError:
        out.write(b"!unreadable: permission denied")
    except OSError as exc:
        out.write(("!unreadable: " + (exc.strerror or str(exc))).encode("utf-8", "replace"))
    out.write(b"\\0")
"""


def hash_in_children(paths: list[str], processes: int) -> list[tuple[str | None, str | None]]:
    """(sha256, None) or (None, problem) per path, as `_hash_or_error` gives them, computed by up to
    `processes` child interpreters (`python -I -S`: no site, ~20 ms to start), each on a contiguous share.
    Raises OSError when a child cannot start or answers short (the caller then has no hints)."""
    if not paths:
        return []
    count = max(1, min(processes, len(paths) // 64 or 1))
    size = -(-len(paths) // count)
    shares = [paths[i : i + size] for i in range(0, len(paths), size)]
    children = []
    try:
        for share in shares:
            child = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _HASHER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            children.append(child)
            assert child.stdin is not None
            child.stdin.write(b"".join(os.fsencode(p) + b"\0" for p in share))  # read whole before any answer
            child.stdin.close()
        results: list[tuple[str | None, str | None]] = []
        for child, share in zip(children, shares, strict=True):
            assert child.stdout is not None
            answers = child.stdout.read().split(b"\0")[:-1]
            if child.wait() != 0 or len(answers) != len(share):
                raise OSError(f"the hashing process ended with status {child.returncode}")
            results.extend(
                (a[1:].decode(), None) if a[:1] == b"=" else (None, a[1:].decode("utf-8", "replace"))
                for a in answers
            )
        return results
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def _candidates(root: Path, problems: list[tuple[str, str]]) -> dict[str, os.stat_result]:
    seen: dict[str, os.stat_result] = {}
    for path, stat_or_error in _walk(root):
        if isinstance(stat_or_error, str):
            problems.append((path, stat_or_error))
        else:
            seen[path] = stat_or_error
    return seen


def _to_hash(
    seen: dict[str, os.stat_result], index: dict[str, FileEntry]
) -> list[tuple[str, os.stat_result]]:
    """The files whose hash the index does not hold at their current size and mtime, in path order."""
    todo = []
    for path, st in sorted(seen.items()):
        old = index.get(path)
        if old and old.sha256 and old.size == st.st_size and old.mtime_ns == st.st_mtime_ns:
            continue
        todo.append((path, st))
    return todo


def _log_scan(
    root: Path, index: dict[str, FileEntry], result: ScanResult, log: Callable[[str], None]
) -> None:
    """New problems, once each; and an empty folder, which otherwise only shows as nothing happening."""
    for path, problem in result.problems:
        old = index.get(path)
        if not old or old.error != problem:
            log(f"skipped {path}: {problem}")
    if not result.files and not result.problems:
        log(f"Load: no images found in {root} (looked for {' '.join(sorted(IMAGE_EXTENSIONS))}, any case)")


def _hash_or_error(path: str) -> tuple[str | None, str | None]:
    try:
        return hash_file(path), None
    except PermissionError:
        return None, "unreadable: permission denied"
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"


def _walk(root: Path) -> Iterator[tuple[str, os.stat_result | str]]:
    """Yield (path, stat) for candidate image files, or (path, problem) for ones that cannot be listed.

    Real folders are walked first. A folder symlink into the tree is skipped (its files are found under their
    real paths), one pointing to its own ancestor is reported as a loop, and one pointing outside the tree is
    followed once per real folder."""
    root_real = os.path.realpath(root)
    visited: set[tuple[int, int]] = set()
    stack, outside = [root], []
    while stack or outside:
        folder = stack.pop() if stack else outside.pop(0)
        try:
            st = folder.stat()
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            yield str(folder), f"unreadable folder: {exc.strerror or exc}"
            continue
        if (st.st_dev, st.st_ino) in visited:
            continue
        visited.add((st.st_dev, st.st_ino))
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = os.path.join(folder, entry.name)
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError as exc:
                yield path, f"symlink loop or broken link: {exc.strerror or exc}"
                continue
            if is_dir:
                problem = _folder_link_problem(entry, path, folder, root_real, stack, outside)
                if problem:
                    yield path, problem
                continue
            if os.path.splitext(entry.name)[1].lower() not in IMAGE_EXTENSIONS:
                continue
            try:
                yield path, entry.stat(follow_symlinks=True)
            except OSError as exc:
                yield path, f"broken link or symlink loop: {exc.strerror or exc}"


def _folder_link_problem(
    entry: os.DirEntry, path: str, folder: Path, root_real: str, stack: list[Path], outside: list[Path]
) -> str | None:
    if not entry.is_symlink():
        stack.append(Path(path))
        return None
    real = os.path.realpath(path)
    if os.path.commonpath([real, os.path.realpath(folder)]) == real:
        return "symlink loop: the link points to a folder that contains it"
    if os.path.commonpath([real, root_real]) != root_real:
        outside.append(Path(path))
    return None  # a link to a folder inside the tree: its files are found under their real paths
