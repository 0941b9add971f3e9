"""The guarantees every layout shares (`export.atomic`), checked for Save, SaveKohya and SaveImageFolder:
an unchanged re-export writes nothing; a change rewrites only the files that show it (the rest keep their
inode and mtime: hard-linked from the previous export); a failure midway leaves the previous export
byte-identical; a folder beprepared did not write is refused and untouched.

Each check compares recursive snapshots (inode, mtime, bytes), so a rewrite of an unchanged file fails it.

Not covered here: the non-Linux fallback swap and concurrent exports to one folder (see test_folder.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from beprepared_dagster.export.atomic import MANIFEST, ExportRefused
from beprepared_dagster.export.dataset import STATS_HTML, STATS_JSON, export_dataset
from beprepared_dagster.nodes import Save, SaveImageFolder, SaveKohya
from beprepared_dagster.store.objects import ObjectStore
from beprepared_dagster_tests.export.rows import image_row, leftovers, snapshot, with_props

LAYOUTS = {
    "original": lambda **kw: Save(**kw),
    "kohya": lambda **kw: SaveKohya(dataset_toml=True, repeats=3, **kw),
    "imagefolder": lambda **kw: SaveImageFolder(properties=["width"], **kw),
}


@pytest.fixture(params=list(LAYOUTS))
def layout(request) -> str:
    return request.param


@pytest.fixture
def objects(tmp_path: Path) -> ObjectStore:
    return ObjectStore(tmp_path / "objects")


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "out" / "dataset"


def export(layout: str, target: Path, rows, objects, **kw):
    return export_dataset(target, rows, objects, LAYOUTS[layout](**kw), "guarantees")


def some_rows(objects, tmp_path, count=3):
    return [image_row(objects, tmp_path, i, f"/p/{i}.jpg", caption=f"caption {i}") for i in range(count)]


def images_in(snap: dict) -> set[str]:
    return {name for name in snap if name.endswith(".jpg")}


def test_an_unchanged_reexport_writes_nothing(layout, objects, target, tmp_path):
    rows = some_rows(objects, tmp_path)
    export(layout, target, rows, objects)
    before, folder = snapshot(target), target.stat().st_ino
    report = export(layout, target, rows, objects)
    assert report.unchanged and report.written == report.linked == 0
    assert snapshot(target) == before and target.stat().st_ino == folder


def test_a_changed_caption_rewrites_only_what_shows_it(layout, objects, target, tmp_path):
    rows = some_rows(objects, tmp_path)
    export(layout, target, rows, objects, stats=False)
    before = snapshot(target)
    rows[1] = with_props(rows[1], caption="a brand new caption")
    report = export(layout, target, rows, objects, stats=False)
    after = snapshot(target)
    changed = {name for name in after if after[name] != before.get(name)} - {MANIFEST}
    assert set(after) == set(before)
    assert changed, "the new caption must be written somewhere"
    assert not changed & images_in(after), "images are hard-linked, never rewritten for a caption change"
    # The caption's own file (or the metadata listing it) and the gallery; nothing else.
    assert len(changed) <= 3, changed
    assert report.written == len(changed) and report.linked == len(after) - 1 - len(changed)
    assert any("a brand new caption" in after[name][2].decode() for name in changed)


def test_statistics_files_are_kept_when_statistics_do_not_change(layout, objects, target, tmp_path):
    rows = some_rows(objects, tmp_path)
    export(layout, target, rows, objects)
    before = snapshot(target)
    rows[0] = with_props(rows[0], score=0.9)  # a property the statistics don't use
    export(layout, target, rows, objects)
    after = snapshot(target)
    assert after[STATS_HTML] == before[STATS_HTML] and after[STATS_JSON] == before[STATS_JSON]


def test_a_failure_midway_leaves_the_previous_export_intact(layout, objects, target, tmp_path, monkeypatch):
    rows = some_rows(objects, tmp_path, 2)
    export(layout, target, rows, objects)
    before, folder = snapshot(target), target.stat().st_ino
    more = rows + [
        image_row(objects, tmp_path, i, f"/p/{i}.jpg", caption=f"caption {i}") for i in range(2, 6)
    ]
    from beprepared_dagster.export import atomic

    real_place, calls = atomic.place_object, []

    def failing_place(objects, object_id, dest):
        calls.append(dest)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_place(objects, object_id, dest)

    monkeypatch.setattr(atomic, "place_object", failing_place)
    with pytest.raises(OSError, match="No space left"):
        export(layout, target, more, objects)
    assert len(calls) >= 3  # it failed midway: other new images were already placed in the staging folder
    assert snapshot(target) == before and target.stat().st_ino == folder
    assert leftovers(target.parent) == []
    monkeypatch.setattr(atomic, "place_object", real_place)
    assert export(layout, target, more, objects).images == 6


def test_a_foreign_folder_is_refused_and_untouched(layout, objects, target, tmp_path):
    (target / "sub").mkdir(parents=True)
    (target / "sub" / "photo.jpg").write_bytes(b"precious")
    before = snapshot(target)
    with pytest.raises(ExportRefused, match="not written by beprepared"):
        export(layout, target, some_rows(objects, tmp_path), objects)
    assert snapshot(target) == before and leftovers(target.parent) == []


def test_switching_layout_in_the_same_folder_replaces_our_own_export(layout, objects, target, tmp_path):
    """Our manifest marks the folder as ours, so another layout may replace it, leaving no stale files."""
    rows = some_rows(objects, tmp_path)
    export("original", target, rows, objects)
    export(layout, target, rows, objects)
    manifest = json.loads((target / MANIFEST).read_text())["files"]
    assert set(snapshot(target)) == {*manifest, MANIFEST}
