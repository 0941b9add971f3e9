"""Content-addressed object store: `objects/aa/bb/<sha256>`.

Two kinds of entries, one id space (the SHA-256 of the bytes):

* **Stored bytes** (`objects/aa/bb/<id>`): bytes the project derives (conversions, crops…), copies of
  sources in `copy` mode, and copy-on-write clones (reflinks) of sources where the file system makes one.
  They are written once through a temp file and a rename, read-only (0444), with a fixed modification time
  (`SEALED_MTIME_NS`): an export hard-links them, so an in-place edit of an exported file would also edit
  the store; the changed mtime gives it away, and such an object is never served again (`ObjectChanged`).
* **References** (rows of `objects/refs.sqlite`, see `store.refs`; `objects/aa/bb/<id>.ref` files in a
  store written before it): a user's source file by path, with the size and modification time it had when
  its SHA-256 was computed; every source has one, also when its bytes are stored (a clone or, in `copy`
  mode, a private copy: the reference is its provenance). Every read checks them; a file
  that changed is re-hashed, and served only if its bytes still have the id (else `ObjectChanged`: the next
  scan gives the new content its own image, as for any edited source). A user's file is never hard-linked
  and never modified, so editing it cannot corrupt the store.

`path()` and `read()` are the only ways to the bytes and both check; `open_checked()` checks the open file
itself (no window between the check and the read).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from beprepared_dagster.store.refs import REFS_DB, RefIndex

_OBJECT_ID = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
REF_SUFFIX = ".ref"
# 2000-01-01T00:00:00Z: the modification time of every stored object. Any write to it (through a hard link
# in an export, by a root user who ignores the read-only mode) moves it.
SEALED_MTIME_NS = 946_684_800 * 1_000_000_000
STORAGE_MODES = ("reference", "copy")
STORAGE_ENV = "BEPREPARED_STORAGE"
_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)


_NO_CLONES: set[int] = set()  # devices (of sources) where a reflink into this store failed as unsupported


def is_object_id(value: object) -> bool:
    return isinstance(value, str) and bool(_OBJECT_ID.fullmatch(value))


def hash_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def storage_mode(mode: str | None = None) -> str:
    """The storage mode: the given one, else `$BEPREPARED_STORAGE`, else "reference"."""
    chosen = mode if mode is not None else os.environ.get(STORAGE_ENV) or "reference"
    if chosen not in STORAGE_MODES:
        where = "storage" if mode is not None else f"${STORAGE_ENV}"
        raise ValueError(f"{where}={chosen!r} is not a storage mode; use 'reference' or 'copy'")
    return chosen


class ObjectChanged(OSError):
    """An object's bytes are no longer what its id says (a source edited, truncated or replaced since it was
    loaded, or a stored object edited through a hard link); it is not served."""


class ChangedFile(OSError):
    """A source file's bytes no longer match the hash it was discovered with."""


class ObjectStore:
    """Stores bytes by SHA-256 (see the module docstring for stored bytes vs references)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root = str(root)
        self._sealed_checked = False
        self._refs = RefIndex(root / REFS_DB)

    def path(self, object_id: str) -> Path:
        """The file holding an object's bytes, checked: the stored file, or the referenced source while it is
        unchanged. Raises ValueError for anything but a 64-hex id (no path injection), FileNotFoundError
        for an unknown object, `ObjectChanged` when the bytes changed."""
        stored = self._stored(object_id)
        try:
            st = os.stat(stored)
        except FileNotFoundError:
            return self._referenced(object_id)
        self._check_sealed(stored, st)
        return stored

    def stored_path(self, object_id: str) -> Path | None:
        """The store's own file for an object (never a user's file), or None when it is only referenced."""
        stored = self._stored(object_id)
        return stored if stored.is_file() else None

    def has(self, object_id: str) -> bool:
        """Whether the store knows the object (stored or referenced); reading it may still find it changed."""
        return self._stored(object_id).is_file() or self.is_source(object_id)

    def read(self, object_id: str) -> bytes:
        with self.open_checked(object_id) as f:
            return f.read()

    def open_checked(self, object_id: str) -> BinaryIO:
        """Open an object for reading; the open file itself is checked (size, mtime), so nothing can change
        between the check and the read that the check would not see."""
        stored = self._stored_str(object_id)
        try:
            f = open(stored, "rb")  # noqa: SIM115 - returned to the caller
        except FileNotFoundError:
            return self._open_referenced(object_id)
        try:
            self._check_sealed(Path(stored), os.fstat(f.fileno()))
        except BaseException:
            f.close()
            raise
        return f

    def _open_referenced(self, object_id: str) -> BinaryIO:
        """Open a referenced source, checked against its reference (read once). A source whose size or mtime
        differ goes through `_referenced` (re-hashed: the same bytes update the reference and are opened
        again, other bytes or a vanished file raise `ObjectChanged`)."""
        ref = self._read_ref(object_id)
        try:
            f = _open_if_as_recorded(ref)
            if f is None:
                self._referenced(object_id)
                ref = self._read_ref(object_id)
                f = _open_if_as_recorded(ref)
        except FileNotFoundError:
            self._referenced(object_id)  # raises ObjectChanged naming the vanished source
            raise
        if f is None:
            raise ObjectChanged(f"{ref['path']}: changed while it was being opened")
        return f

    # --- writing ---------------------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> str:
        object_id = hashlib.sha256(data).hexdigest()
        if not self._stored(object_id).is_file():
            self._write(object_id, [data])
        return object_id

    def put_file(self, source: str | os.PathLike, expected: str | None = None) -> str:
        """Copy a file in, hashing while copying. With `expected`, a file whose content no longer has that
        hash (changed since it was discovered) raises `ChangedFile` and stores nothing."""
        if expected is not None and self._stored(expected).is_file():
            return expected
        digest = hashlib.sha256()
        fd, tmp = self._temp()
        try:
            with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
            object_id = digest.hexdigest()
            if expected is not None and object_id != expected:
                raise ChangedFile(f"{source}: content changed since it was discovered")
            self._seal_into_place(tmp, object_id)
            return object_id
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def add_source(
        self, source: str | os.PathLike, expected: str, size: int, mtime_ns: int, mode: str = "reference"
    ) -> str:
        """Make a user's file available as object `expected`, whose SHA-256 was computed when the file had
        `size` and `mtime_ns`. `copy`: a private copy. `reference`: a copy-on-write clone where the file
        system makes one, else a reference by path. Returns how: "stored", "copied", "cloned",
        "referenced". Raises `ChangedFile` when the file is no longer what was hashed."""
        ref = {"path": os.path.abspath(source), "size": size, "mtime_ns": mtime_ns}
        if os.path.isfile(self._stored_str(expected)):
            if not self.is_source(expected):
                self._write_ref(expected, ref)
            return "stored"
        st = os.stat(source)
        if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
            raise ChangedFile(f"{source}: content changed since it was discovered")
        # The reference is also the object's provenance: exports copy a source's bytes, never link them.
        if mode == "copy":
            self.put_file(source, expected=expected)
            how = "copied"
        else:
            how = "cloned" if self._clone(source, expected, st.st_dev) else "referenced"
        self._write_ref(expected, ref)
        return how

    def is_source(self, object_id: str) -> bool:
        """Whether the object's bytes are a user's file (referenced, cloned or copied), not derived bytes."""
        legacy = self._stored_str(object_id) + REF_SUFFIX  # validates the id
        return self._refs.has(object_id) or os.path.isfile(legacy)

    def adopt_ref(self, ref_file: Path) -> bool:
        """Import another store's reference file (`<id>.ref`, a store from before the reference index) when
        its source still has that id."""
        ref = _parse_ref(ref_file)
        return ref is not None and self.adopt(ref_file.name[: -len(REF_SUFFIX)], ref)

    def adopt(self, object_id: str, ref: dict) -> bool:
        """Import another store's reference when its source still has that id."""
        if not is_object_id(object_id) or not _source_matches(ref, object_id):
            return False
        self._write_ref(object_id, ref)
        return True

    def references(self, root: Path) -> Iterator[tuple[str, dict]]:
        """The references another store (at `root`) keeps in its index (for importing it)."""
        other = RefIndex(root / REFS_DB)
        try:
            yield from other.items()
        finally:
            other.close()

    # --- internals -------------------------------------------------------------------------------------

    def _stored(self, object_id: str) -> Path:
        return Path(self._stored_str(object_id))

    def _stored_str(self, object_id: str) -> str:
        if not is_object_id(object_id):
            raise ValueError(f"not an object id: {object_id!r}")
        return f"{self._root}/{object_id[:2]}/{object_id[2:4]}/{object_id}"

    def _referenced(self, object_id: str) -> Path:
        ref = self._read_ref(object_id)
        source = Path(ref["path"])
        try:
            st = os.stat(source)
        except FileNotFoundError:
            raise ObjectChanged(f"{source}: the source file of image {object_id[:12]}… is gone") from None
        if (st.st_size, st.st_mtime_ns) == (ref["size"], ref["mtime_ns"]):
            return source
        # Touched, copied over with the same bytes, restored from a backup: still the same image?
        if st.st_size == ref["size"] and hash_file(source) == object_id:
            self._write_ref(object_id, {**ref, "mtime_ns": st.st_mtime_ns})
            return source
        raise ObjectChanged(
            f"{source} changed since it was loaded (it is image {object_id[:12]}… no more); "
            "run the workflow again to load the new version"
        )

    def _read_ref(self, object_id: str) -> dict:
        """The reference from the index, else from a `.ref` file of a store written before it."""
        ref_file = self._stored_str(object_id) + REF_SUFFIX  # validates the id
        ref = self._refs.get(object_id)
        if ref is not None:
            return ref
        ref = _parse_ref(ref_file)
        if ref is None:
            if os.path.exists(ref_file):
                raise ObjectChanged(f"{ref_file}: damaged reference")
            raise FileNotFoundError(errno.ENOENT, f"no object {object_id} in {self.root}")
        return ref

    def _write_ref(self, object_id: str, ref: dict) -> None:
        self._stored_str(object_id)  # validates the id
        self._refs.put(object_id, ref)  # read before any older `.ref` file of the same object

    def _clone(self, source: str | os.PathLike, object_id: str, device: int) -> bool:
        """A reflink of `source` (on `device`) as the object, verified by hashing the clone; False where
        unsupported (then not tried again for that file system in this process)."""
        if device in _NO_CLONES:
            return False
        fd, tmp = self._temp()
        try:
            with open(source, "rb") as src:
                try:
                    fcntl.ioctl(fd, _FICLONE, src.fileno())
                except OSError as exc:
                    if exc.errno in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.ENOSYS):
                        _NO_CLONES.add(device)
                    return False
            if hash_file(tmp) != object_id:
                raise ChangedFile(f"{source}: content changed since it was discovered")
            self._seal_into_place(tmp, object_id)
            return True
        finally:
            os.close(fd)
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _temp(self) -> tuple[int, str]:
        target_dir = self.root / "tmp"
        target_dir.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(dir=target_dir)

    def _mark_sealed(self) -> None:
        """Before the first write: a new store gets its marker now, an older one is sealed first."""
        if not self._sealed_checked:
            self.root.mkdir(parents=True, exist_ok=True)
            self._seal_legacy()

    def _seal_into_place(self, tmp: str, object_id: str) -> None:
        self._mark_sealed()
        os.chmod(tmp, 0o444)
        os.utime(tmp, ns=(SEALED_MTIME_NS, SEALED_MTIME_NS))
        final = self._stored(object_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)

    def _write(self, object_id: str, chunks: list[bytes]) -> None:
        final = self._stored(object_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
            self._seal_into_place(tmp, object_id)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def _check_sealed(self, path: Path, st: os.stat_result) -> None:
        """A stored object must still carry the sealed mtime; one that does not was written to (through a
        hard link in an export): it is moved to `objects/quarantine/` and never served again."""
        if st.st_mtime_ns == SEALED_MTIME_NS or not stat.S_ISREG(st.st_mode):
            return
        if not self._sealed_checked:
            self._seal_legacy()
            if os.stat(path).st_mtime_ns == SEALED_MTIME_NS:
                return
        quarantine = self.root / "quarantine"
        quarantine.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.replace(path, quarantine / path.name)
        raise ObjectChanged(
            f"{path} was modified after it was stored (through a hard link: an exported copy edited in "
            f"place), so its bytes are not image {path.name[:12]}… any more; it was moved to {quarantine}. "
            "Run again: a source is loaded again; derived bytes need their stage computed again "
            "(`beprepared forget` its cached results)."
        )

    def _seal_legacy(self) -> None:
        """Once per workspace: seal the objects a version without sealing stored (marker `objects/.sealed`)."""
        self._sealed_checked = True
        marker = self.root / ".sealed"
        if marker.exists() or not self.root.is_dir():
            return
        for path in self.root.glob("??/??/*"):
            if is_object_id(path.name) and path.is_file():
                os.chmod(path, 0o444)
                os.utime(path, ns=(SEALED_MTIME_NS, SEALED_MTIME_NS))
        marker.write_text(
            "stored objects are read-only with a fixed mtime; see beprepared_dagster.store.objects\n"
        )


def _open_if_as_recorded(ref: dict) -> BinaryIO | None:
    """The referenced file opened, when the open file has the size and mtime its reference records; else
    None. A vanished file raises FileNotFoundError."""
    f = open(ref["path"], "rb")  # noqa: SIM115 - returned to the caller
    try:
        st = os.fstat(f.fileno())
    except BaseException:
        f.close()
        raise
    if (st.st_size, st.st_mtime_ns) == (ref["size"], ref["mtime_ns"]):
        return f
    f.close()
    return None


def _parse_ref(ref_file: str | Path) -> dict | None:
    try:
        fd = os.open(ref_file, os.O_RDONLY)  # os-level: read once per image by every export
        try:
            ref = json.loads(os.read(fd, 1 << 16))
        finally:
            os.close(fd)
    except (OSError, ValueError):
        return None
    if not (
        isinstance(ref, dict)
        and isinstance(ref.get("path"), str)
        and isinstance(ref.get("size"), int)
        and isinstance(ref.get("mtime_ns"), int)
    ):
        return None
    return ref


def _source_matches(ref: dict, object_id: str) -> bool:
    try:
        return hash_file(ref["path"]) == object_id
    except OSError:
        return False
