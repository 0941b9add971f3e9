"""How the workspace keeps images (`store.objects`, `Workflow(storage=…)`), and that it never serves changed
bytes under an old id: references to the user's files (the default), copy-on-write clones where the file
system makes them, private copies (`storage="copy"`), derived bytes stored once and hard-linked into exports.
Every path is tried with in-place writes, replace-by-rename and truncation of sources and of exported files.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from beprepared_dagster import ConvertFormat, Load, Save, Workflow
from beprepared_dagster.store import WorkspaceStore
from beprepared_dagster.store.objects import (
    SEALED_MTIME_NS,
    ChangedFile,
    ObjectChanged,
    ObjectStore,
    hash_file,
    storage_mode,
)
from beprepared_dagster_tests.conftest import make_images


def added(store: ObjectStore, path: Path, mode: str = "reference") -> tuple[str, str]:
    st = path.stat()
    object_id = hash_file(path)
    return object_id, store.add_source(path, object_id, st.st_size, st.st_mtime_ns, mode)


@pytest.fixture
def objects(tmp_path: Path) -> ObjectStore:
    return ObjectStore(tmp_path / "objects")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return make_images(tmp_path / "src", 1, 64, 48)[0]


def stored_bytes(root: Path) -> int:
    """Bytes of image data the store holds itself (references are rows of its index)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and len(p.name) == 64)


def test_a_reference_is_served_while_the_source_is_unchanged_and_takes_no_copy(objects, source):
    object_id, how = added(objects, source)
    assert how == "referenced"
    assert stored_bytes(objects.root) == 0
    assert objects.path(object_id) == source and objects.read(object_id) == source.read_bytes()
    assert source.stat().st_nlink == 1  # never hard-linked, never modified
    assert objects.is_source(object_id)


@pytest.mark.parametrize(
    "change",
    ["in-place write, same size", "truncation", "append", "replace by rename", "deleted"],
)
def test_a_changed_source_is_never_served_under_its_old_id(objects, source, change):
    object_id, _ = added(objects, source)
    original = source.read_bytes()
    if change == "in-place write, same size":
        with open(source, "r+b") as f:
            f.seek(len(original) // 2)
            f.write(b"\x00\x01\x02\x03")
    elif change == "truncation":
        os.truncate(source, len(original) // 2)
    elif change == "append":
        with open(source, "ab") as f:
            f.write(b"more")
    elif change == "replace by rename":
        other = source.with_name("other.jpg")
        other.write_bytes(original[::-1])
        os.replace(other, source)
    else:
        source.unlink()
    with pytest.raises(ObjectChanged, match=str(source.name)):
        objects.read(object_id)
    with pytest.raises(ObjectChanged):
        objects.path(object_id)


def test_a_source_touched_or_rewritten_with_the_same_bytes_is_still_served(objects, source):
    object_id, _ = added(objects, source)
    data = source.read_bytes()
    os.utime(source, ns=(1, 1))  # touched
    assert objects.read(object_id) == data
    replacement = source.with_name("restored.jpg")
    replacement.write_bytes(data)
    os.replace(replacement, source)  # restored from a backup: same bytes, new inode and mtime
    assert objects.read(object_id) == data
    assert hashlib.sha256(objects.read(object_id)).hexdigest() == object_id


def test_a_source_changed_between_discovery_and_load_is_refused(objects, source):
    st = source.stat()
    object_id = hash_file(source)
    with open(source, "ab") as f:
        f.write(b"x")
    with pytest.raises(ChangedFile):
        objects.add_source(source, object_id, st.st_size, st.st_mtime_ns)
    assert not objects.has(object_id)


def test_copy_mode_keeps_a_sealed_private_copy_that_source_edits_cannot_reach(objects, source):
    object_id, how = added(objects, source, "copy")
    stored = objects.root / object_id[:2] / object_id[2:4] / object_id
    assert how == "copied" and stored.is_file()
    assert stored.stat().st_mode & 0o222 == 0 and stored.stat().st_mtime_ns == SEALED_MTIME_NS
    data = source.read_bytes()
    with open(source, "r+b") as f:
        f.write(b"EDITED")
    source.unlink()
    assert objects.read(object_id) == data


def test_reflink_where_the_file_system_has_it_else_a_reference(objects, source):
    """ext4 (this machine) has no reflinks: the fallback is a reference. On btrfs / XFS it is a clone,
    whose bytes are the store's own."""
    object_id, how = added(objects, source)
    data = source.read_bytes()
    assert how in ("cloned", "referenced")
    with open(source, "r+b") as f:
        f.write(b"EDITED")
    if how == "cloned":
        assert objects.read(object_id) == data
    else:
        with pytest.raises(ObjectChanged):
            objects.read(object_id)


def legacy_ref(objects: ObjectStore, object_id: str, text: str) -> Path:
    """A reference file as a store from before the reference index kept it."""
    ref = objects.root / object_id[:2] / object_id[2:4] / f"{object_id}.ref"
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_text(text)
    return ref


def test_references_are_rows_of_one_index_seen_at_once_by_another_process(objects, source, tmp_path):
    object_id, _ = added(objects, source)
    assert sorted(p.name for p in objects.root.iterdir()) == [
        "refs.sqlite",
        "refs.sqlite-shm",
        "refs.sqlite-wal",
    ]
    other = ObjectStore(objects.root)  # what another process opens: reads while this one keeps writing
    assert other.read(object_id) == source.read_bytes() and other.is_source(object_id)
    second = make_images(tmp_path / "more", 1, 32, 32)[0]
    second_id, _ = added(objects, second)
    assert other.read(second_id) == second.read_bytes()
    assert not other.has("0" * 64) and not other.is_source("0" * 64)


def test_a_reference_file_of_an_older_store_is_still_read_and_the_index_wins(objects, source, tmp_path):
    object_id = hash_file(source)
    st = source.stat()
    legacy_ref(
        objects, object_id, f'{{"path": "{source}", "size": {st.st_size}, "mtime_ns": {st.st_mtime_ns}}}'
    )
    assert objects.is_source(object_id) and objects.read(object_id) == source.read_bytes()
    moved = source.rename(tmp_path / "moved.png")  # the file moved; Load references it at its new path
    assert added(objects, moved)[1] == "referenced"
    assert objects.path(object_id) == moved and objects.read(object_id) == moved.read_bytes()


def test_a_damaged_reference_file_is_refused(objects, source):
    object_id = hash_file(source)
    legacy_ref(objects, object_id, '{"path": 3}')
    with pytest.raises(ObjectChanged, match="damaged reference"):
        objects.read(object_id)


def test_storage_mode_names_the_parameter_or_variable(monkeypatch):
    assert storage_mode() == "reference"
    with pytest.raises(ValueError, match="storage='hardlink'"):
        storage_mode("hardlink")
    monkeypatch.setenv("BEPREPARED_STORAGE", "copy")
    assert storage_mode() == "copy"
    monkeypatch.setenv("BEPREPARED_STORAGE", "symlink")
    with pytest.raises(ValueError, match="BEPREPARED_STORAGE"):
        storage_mode()


# --- through a workflow ------------------------------------------------------------------------------------


def run(folder: Path, ws: Path, storage: str | None = None, convert: bool = False):
    load = Load(folder)
    chain = load >> ConvertFormat("PNG") >> Save if convert else load >> Save
    return Workflow("store", chain, workspace=ws, storage=storage).run()


def exported_images(ws: Path) -> dict[str, Path]:
    return {p.name: p for p in (ws / "output").iterdir() if p.suffix in (".jpg", ".png")}


def test_reference_workflow_exports_copies_and_the_workspace_holds_no_second_copy(tmp_path):
    folder, ws = tmp_path / "photos", tmp_path / "ws"
    sources = make_images(folder, 3, 96, 64)
    run(folder, ws)
    assert stored_bytes(ws / "objects") == 0
    exported = exported_images(ws)
    assert len(exported) == 3
    for path in exported.values():
        assert path.stat().st_nlink == 1  # a copy, never a link to the user's file
    assert all(s.stat().st_nlink == 1 for s in sources)
    # An exported copy edited in place cannot reach the user's file, and the next export restores it.
    victim = next(iter(exported.values()))
    before = {s: s.read_bytes() for s in sources}
    with open(victim, "r+b") as f:
        f.write(b"EDITED")
    run(folder, ws)
    assert not victim.read_bytes().startswith(b"EDITED")
    assert {s: s.read_bytes() for s in sources} == before


def test_an_edited_source_becomes_a_new_image_and_the_old_bytes_leave_the_export(tmp_path):
    folder, ws = tmp_path / "photos", tmp_path / "ws"
    sources = make_images(folder, 2, 96, 64)
    run(folder, ws)
    old_id = hash_file(sources[0])
    with open(sources[0], "r+b") as f:
        f.seek(200)
        f.write(b"\x13\x37")  # stays a decodable JPEG with other bytes
    summary = run(folder, ws)
    assert summary.new_images == 1
    names = exported_images(ws)
    assert not any(old_id in n for n in names)
    new_id = hash_file(sources[0])
    assert any(new_id in n for n in names)
    store = WorkspaceStore(ws)
    with pytest.raises(ObjectChanged):
        store.objects.read(old_id)


def test_derived_bytes_are_stored_once_and_hard_linked_into_the_export(tmp_path):
    folder, ws = tmp_path / "photos", tmp_path / "ws"
    make_images(folder, 2, 96, 64)
    run(folder, ws, convert=True)
    store = WorkspaceStore(ws)
    for path in exported_images(ws).values():
        object_id = hashlib.sha256(path.read_bytes()).hexdigest()
        stored = store.objects.stored_path(object_id)
        assert stored is not None and stored.stat().st_ino == path.stat().st_ino
        assert path.stat().st_mode & 0o222 == 0


def test_copy_mode_workflow_survives_its_sources_being_deleted(tmp_path):
    folder, ws = tmp_path / "photos", tmp_path / "ws"
    sources = make_images(folder, 2, 96, 64)
    data = {hash_file(s): s.read_bytes() for s in sources}
    run(folder, ws, storage="copy")
    assert stored_bytes(ws / "objects") == sum(len(d) for d in data.values())
    store = WorkspaceStore(ws)
    for s in sources:
        s.unlink()
    for object_id, content in data.items():
        assert store.objects.read(object_id) == content
    for path in exported_images(ws).values():  # exports copy source bytes, even from the store's own copy
        assert path.stat().st_nlink == 1
