"""Unit tests of the content-addressed object store (`store.objects`): ids, layout, private copies, the
changed-file check and rejection of anything that is not an object id.

Not covered here: concurrent writers of the same object from several processes, disk-full behaviour, and
garbage collection of unused objects (there is none yet).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from beprepared_dagster.store.objects import ChangedFile, ObjectStore, hash_file, is_object_id


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore(tmp_path / "objects")


def all_files(root: Path) -> list[Path]:
    """Every file under the store but its `.sealed` marker."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != ".sealed") if root.exists() else []


def test_put_bytes_stores_by_sha256(store: ObjectStore):
    data = b"\x89PNG fake bytes"
    object_id = store.put_bytes(data)
    assert object_id == hashlib.sha256(data).hexdigest()
    assert store.path(object_id) == store.root / object_id[:2] / object_id[2:4] / object_id
    assert store.has(object_id)
    assert store.read(object_id) == data
    assert all_files(store.root) == [store.path(object_id)]  # no temp file left behind


def test_put_bytes_twice_does_not_rewrite(store: ObjectStore):
    object_id = store.put_bytes(b"same")
    before = store.path(object_id).stat()
    assert store.put_bytes(b"same") == object_id
    after = store.path(object_id).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_put_bytes_empty(store: ObjectStore):
    object_id = store.put_bytes(b"")
    assert object_id == hashlib.sha256(b"").hexdigest()
    assert store.read(object_id) == b""


def test_put_file_copies_never_links(store: ObjectStore, tmp_path: Path):
    source = tmp_path / "photo.jpg"
    source.write_bytes(b"original bytes" * 1000)
    object_id = store.put_file(source)
    assert object_id == hash_file(source) == hashlib.sha256(source.read_bytes()).hexdigest()
    stored = store.path(object_id)
    assert stored.stat().st_ino != source.stat().st_ino
    # Editing the user's file in place cannot corrupt the store.
    with open(source, "r+b") as f:
        f.write(b"EDITED")
    assert store.read(object_id) == b"original bytes" * 1000
    assert hashlib.sha256(store.read(object_id)).hexdigest() == object_id
    assert all_files(store.root) == [stored]


def test_put_file_larger_than_one_chunk(store: ObjectStore, tmp_path: Path):
    source = tmp_path / "big.bin"
    data = os.urandom((1 << 20) * 2 + 123)
    source.write_bytes(data)
    object_id = store.put_file(source, expected=hashlib.sha256(data).hexdigest())
    assert store.read(object_id) == data


def test_put_file_with_the_expected_hash(store: ObjectStore, tmp_path: Path):
    source = tmp_path / "a.jpg"
    source.write_bytes(b"abc")
    expected = hashlib.sha256(b"abc").hexdigest()
    assert store.put_file(source, expected=expected) == expected
    assert store.read(expected) == b"abc"


def test_put_file_changed_since_discovery_raises_and_stores_nothing(store: ObjectStore, tmp_path: Path):
    source = tmp_path / "a.jpg"
    source.write_bytes(b"discovered content")
    expected = hash_file(source)
    source.write_bytes(b"edited afterwards")
    with pytest.raises(ChangedFile, match="a.jpg: content changed since it was discovered"):
        store.put_file(source, expected=expected)
    assert not store.has(expected)
    assert not store.has(hash_file(source))
    assert all_files(store.root) == []  # the partial copy is gone too


def test_changed_file_is_an_os_error():
    # The Load stage treats it like any other unreadable file.
    assert issubclass(ChangedFile, OSError)


def test_put_file_of_a_missing_file_raises_and_leaves_no_temp(store: ObjectStore, tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        store.put_file(tmp_path / "missing.jpg")
    assert all_files(store.root) == []


def test_put_file_already_stored_is_not_reread(store: ObjectStore, tmp_path: Path):
    object_id = store.put_bytes(b"content")
    # Even if the source is gone, the object is there: nothing to copy.
    assert store.put_file(tmp_path / "gone.jpg", expected=object_id) == object_id


@pytest.mark.parametrize(
    "bad",
    [
        "../../etc/passwd",
        "../" * 21 + "etc/passwd",
        "/etc/passwd",
        "",
        "a" * 63,
        "a" * 65,
        "A" * 64,  # upper-case hex is not what we write
        "g" * 64,
        "a" * 62 + "/x",
        "a" * 64 + "\n",  # `$` would accept a trailing newline
        "a" * 64 + "\x00",
        None,
        123,
        b"a" * 64,
    ],
)
def test_path_rejects_anything_but_a_64_hex_id(store: ObjectStore, bad):
    assert not is_object_id(bad)
    with pytest.raises(ValueError, match="not an object id"):
        store.path(bad)
    with pytest.raises(ValueError):
        store.has(bad)
    with pytest.raises(ValueError):
        store.read(bad)


def test_read_of_a_missing_object(store: ObjectStore):
    missing = "0" * 64
    assert not store.has(missing)
    with pytest.raises(FileNotFoundError):
        store.read(missing)


def test_put_file_expected_must_be_an_object_id(store: ObjectStore, tmp_path: Path):
    source = tmp_path / "a.jpg"
    source.write_bytes(b"abc")
    with pytest.raises(ValueError):
        store.put_file(source, expected="../../etc/passwd")
