"""Content-addressed object store: `objects/aa/bb/<sha256>`, always a private copy of the bytes."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

_OBJECT_ID = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


def is_object_id(value: object) -> bool:
    return isinstance(value, str) and bool(_OBJECT_ID.fullmatch(value))


def hash_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ObjectStore:
    """Stores bytes by SHA-256. Writes go through a temp file and a rename, so a reader never sees half an
    object; a user's file is copied, never hard-linked, so editing it in place cannot corrupt the store."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, object_id: str) -> Path:
        """Where an object lives; raises ValueError for anything but a 64-hex id (no path injection)."""
        if not is_object_id(object_id):
            raise ValueError(f"not an object id: {object_id!r}")
        return self.root / object_id[:2] / object_id[2:4] / object_id

    def has(self, object_id: str) -> bool:
        return self.path(object_id).is_file()

    def read(self, object_id: str) -> bytes:
        return self.path(object_id).read_bytes()

    def put_bytes(self, data: bytes) -> str:
        object_id = hashlib.sha256(data).hexdigest()
        if not self.has(object_id):
            self._write(object_id, [data])
        return object_id

    def put_file(self, source: str | os.PathLike, expected: str | None = None) -> str:
        """Copy a file in, hashing while copying. With `expected`, a file whose content no longer has that
        hash (changed since it was discovered) raises `ChangedFile` and stores nothing."""
        if expected is not None and self.has(expected):
            return expected
        digest = hashlib.sha256()
        target_dir = self.root / "tmp"
        target_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target_dir)
        try:
            with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
            object_id = digest.hexdigest()
            if expected is not None and object_id != expected:
                raise ChangedFile(f"{source}: content changed since it was discovered")
            final = self.path(object_id)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            return object_id
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _write(self, object_id: str, chunks: list[bytes]) -> None:
        final = self.path(object_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
            os.replace(tmp, final)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


class ChangedFile(OSError):
    """A source file's bytes no longer match the hash it was discovered with."""
