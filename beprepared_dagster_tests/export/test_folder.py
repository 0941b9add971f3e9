"""Unit tests of Save's folder export (`export.folder.export_folder`): file naming, caption/sidecar/gallery
contents, incremental re-export (unchanged → nothing written, changed → only the changed files written, the
rest hard-linked), refusal to replace a folder we did not write, and atomicity when an export fails midway.

Rows and objects are built by hand (no workflow run): each image is a real small JPEG in an `ObjectStore`.

Not covered here: the Save stage wiring in Dagster (`orchestration/export.py`), the fallback swap used where
`renameat2(RENAME_EXCHANGE)` is unavailable (non-Linux), and concurrent exports to the same folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.export.dataset import STATS_HTML, STATS_JSON
from beprepared_dagster.export.folder import MANIFEST, ExportRefused, export_folder
from beprepared_dagster.nodes import Save
from beprepared_dagster.store.objects import ObjectChanged, ObjectStore
from beprepared_dagster.store.stages import KEPT, Row
from beprepared_dagster_tests.conftest import make_image


@pytest.fixture
def objects(tmp_path: Path) -> ObjectStore:
    return ObjectStore(tmp_path / "objects")


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "out" / "dataset"


def image_row(objects: ObjectStore, tmp_path: Path, seed: int, path: str, seq: int = 0, **props) -> Row:
    source = make_image(tmp_path / "src" / f"{seed}.jpg", 16, 12, seed=seed)
    object_id = objects.put_file(source)
    base = {
        "objectid": object_id,
        "original_path": path,
        "ext": ".jpg",
        "format": "JPEG",
        "width": 16,
        "height": 12,
    }
    return Row(object_id, seq, KEPT, props={**base, **props})


def export(target: Path, rows: list[Row], objects: ObjectStore, **save_args):
    return export_folder(target, rows, objects, Save(**save_args), "my dataset")


def listing(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """name → (inode, mtime_ns, content) of every file, the manifest included."""
    return {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


# --- naming ----------------------------------------------------------------------------------------------


def test_names_are_basename_objectid_ext(objects, target, tmp_path):
    row = image_row(objects, tmp_path, 1, "/photos/holiday/beach.png", caption="a beach", ext=".jpg")
    oid = row.props["objectid"]
    report = export(target, [row], objects)
    stem = f"beach.png_{oid}"
    assert sorted(p.name for p in target.iterdir()) == sorted(
        [f"{stem}.jpg", f"{stem}.txt", f"{stem}.json", "index.html", STATS_HTML, STATS_JSON, MANIFEST]
    )
    # The image file is the object's bytes, its extension that of the real format.
    assert (target / f"{stem}.jpg").read_bytes() == objects.read(oid)
    assert report.images == 1 and report.captions == 1
    assert report.object_ids == [oid]
    assert set(report.files) == {
        f"{stem}.jpg",
        f"{stem}.txt",
        f"{stem}.json",
        "index.html",
        STATS_HTML,
        STATS_JSON,
    }
    assert leftovers(target.parent) == []


def test_exported_derived_image_is_a_read_only_hard_link_and_an_edit_never_reaches_the_store(
    objects, target, tmp_path
):
    """Derived bytes are stored once: the export hard-links them. Editing the exported file in place (as
    root, who ignores the read-only mode) changes its mtime; the store then refuses to serve those bytes
    under the old id, and the next export rewrites the file."""
    row = image_row(objects, tmp_path, 1, "/p/a.jpg")
    oid = row.props["objectid"]
    export(target, [row], objects)
    exported = target / f"a.jpg_{oid}.jpg"
    stored = objects.path(oid)
    assert exported.stat().st_ino == stored.stat().st_ino
    assert exported.stat().st_mode & 0o222 == 0
    with open(exported, "r+b") as f:
        f.write(b"EDITED")
    with pytest.raises(ObjectChanged, match="modified after it was stored"):
        objects.read(oid)
    assert not stored.exists()  # quarantined: never served again under its id


def test_the_same_image_twice_gets_a_numbered_suffix(objects, target, tmp_path):
    """Concat of two branches keeps one image twice (seq 0 and 1), with different captions."""
    first = image_row(objects, tmp_path, 1, "/p/cat.jpg", seq=0, caption="branch one")
    second = Row(first.image_id, 1, KEPT, props={**first.props, "caption": "branch two"})
    export(target, [second, first], objects)
    oid = first.props["objectid"]
    assert (target / f"cat.jpg_{oid}.jpg").is_file()
    assert (target / f"cat.jpg_{oid}_1.jpg").is_file()
    assert (target / f"cat.jpg_{oid}.txt").read_text(encoding="utf-8") == "branch one"
    assert (target / f"cat.jpg_{oid}_1.txt").read_text(encoding="utf-8") == "branch two"


def test_different_images_with_the_same_basename_do_not_collide(objects, target, tmp_path):
    a = image_row(objects, tmp_path, 1, "/p/2023/IMG_0001.JPG")
    b = image_row(objects, tmp_path, 2, "/p/2024/IMG_0001.JPG")
    export(target, [a, b], objects)
    images = sorted(p.name for p in target.glob("*.jpg"))
    assert images == sorted(f"IMG_0001.JPG_{r.props['objectid']}.jpg" for r in (a, b))


@pytest.mark.parametrize("char", ["名", "é", "😀", "a"])
def test_long_basenames_are_cut_to_80_chars_and_150_bytes(objects, target, tmp_path, char):
    name = char * 200 + ".jpg"
    row = image_row(objects, tmp_path, 1, f"/photos/{name}", caption="c")
    export(target, [row], objects, caption_ext=".caption")
    [image] = list(target.glob("*.jpg"))
    base = image.name[: image.name.index("_" + row.props["objectid"])]
    assert len(base) <= 80
    assert len(base.encode()) <= 150
    assert name.startswith(base)  # a prefix of the real name, cut on a character boundary
    assert len(base) == min(80, 150 // len(char.encode()))
    assert all(len(p.name.encode()) <= 255 for p in target.iterdir())
    assert (target / f"{image.stem}.caption").read_text(encoding="utf-8") == "c"


def test_ext_follows_the_props(objects, target, tmp_path):
    row = image_row(objects, tmp_path, 1, "/p/shot.png", ext=".webp", format="WEBP")
    export(target, [row], objects)
    assert [p.suffix for p in target.iterdir() if p.name.startswith("shot.png_")].count(".webp") == 1


# --- captions, sidecars, gallery -------------------------------------------------------------------------


def test_captions_are_utf8_one_line_without_a_trailing_newline(objects, target, tmp_path):
    """Several trainers read each line of a caption file as an alternative caption, so a caption's own line
    breaks become spaces (several captions are given as a list; see test_captions.py)."""
    caption = "ohwx, café, 名前 — two\nlines\r\n  and more"
    row = image_row(objects, tmp_path, 1, "/p/a.jpg", caption=caption)
    export(target, [row], objects)
    [txt] = list(target.glob("*.txt"))
    assert txt.read_bytes() == "ohwx, café, 名前 — two lines and more".encode()


def test_images_without_a_caption_get_no_caption_file(objects, target, tmp_path):
    rows = [
        image_row(objects, tmp_path, 1, "/p/a.jpg", caption=""),
        image_row(objects, tmp_path, 2, "/p/b.jpg"),
    ]
    report = export(target, rows, objects)
    assert list(target.glob("*.txt")) == []
    assert report.captions == 0


def test_caption_extension_option(objects, target, tmp_path):
    row = image_row(objects, tmp_path, 1, "/p/a.jpg", caption="hello")
    report = export(target, [row], objects, caption_ext=".caption")
    assert list(target.glob("*.txt")) == []
    [cap] = list(target.glob("*.caption"))
    assert cap.read_text(encoding="utf-8") == "hello"
    assert cap.stem == f"a.jpg_{row.props['objectid']}"
    assert report.captions == 1


@pytest.mark.parametrize("bad", [".jpg", ".PNG", ".webp", ".jpeg", ".tiff"])
def test_a_caption_extension_that_is_an_image_extension_is_refused(bad):
    """`<stem>.jpg` would be both the image and its caption: the caption would overwrite the image."""
    with pytest.raises(WorkflowError, match="Save.*caption_ext"):
        Save(caption_ext=bad)


@pytest.mark.parametrize("bad", ["txt", ".", "./x", ".json", ".HTML", ""])
def test_bad_caption_extensions_are_refused(bad):
    with pytest.raises(WorkflowError, match="Save.*caption_ext"):
        Save(caption_ext=bad)


def test_captions_and_sidecars_can_be_turned_off(objects, target, tmp_path):
    row = image_row(objects, tmp_path, 1, "/p/a.jpg", caption="hello")
    export(target, [row], objects, captions=False, sidecars=False, stats=False)
    assert sorted(p.suffix for p in target.iterdir() if p.name != MANIFEST) == [".html", ".jpg"]


def test_sidecars_hold_public_properties_only(objects, target, tmp_path):
    row = image_row(
        objects, tmp_path, 1, "/p/a.jpg", caption="名前", score=0.5, _private="secret", _embedding=[1, 2]
    )
    export(target, [row], objects)
    [sidecar] = [p for p in target.glob("*.json") if not p.name.startswith(".")]
    data = json.loads(sidecar.read_text(encoding="utf-8"))
    assert data == {k: v for k, v in row.props.items() if not k.startswith("_")}
    assert "secret" not in sidecar.read_text(encoding="utf-8")
    assert "名前" in sidecar.read_text(encoding="utf-8")  # readable, not \\u escapes


def test_private_properties_stay_out_of_the_gallery(objects, target, tmp_path):
    row = image_row(objects, tmp_path, 1, "/p/a.jpg", _private="secret-token")
    export(target, [row], objects)
    assert "secret-token" not in (target / "index.html").read_text(encoding="utf-8")


def test_gallery_escapes_html_in_captions_and_paths(objects, target, tmp_path):
    evil = "<script>alert('x')</script>"
    row = image_row(objects, tmp_path, 1, "/p/<img src=x onerror=alert(1)>.jpg", caption=evil)
    report = export_folder(target, [row], objects, Save(), "<b>title</b>")
    page = (target / "index.html").read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "<img src=x" not in page
    assert "<b>title</b>" not in page and "&lt;b&gt;title&lt;/b&gt;" in page
    # The gallery links every exported image.
    [image] = [n for n in report.files if n.endswith(".jpg")]
    from urllib.parse import quote

    assert f'src="{quote(image)}"' in page


def test_gallery_lists_every_image(objects, target, tmp_path):
    rows = [image_row(objects, tmp_path, i, f"/p/{i}.jpg") for i in range(5)]
    export(target, rows, objects)
    page = (target / "index.html").read_text(encoding="utf-8")
    assert page.count("<figure>") == 5
    assert "5 images" in page


# --- incremental re-export -------------------------------------------------------------------------------


def test_reexport_of_the_same_rows_changes_nothing(objects, target, tmp_path):
    rows = [image_row(objects, tmp_path, i, f"/p/{i}.jpg", caption=f"c{i}") for i in range(3)]
    export(target, rows, objects)
    before, folder_inode = listing(target), target.stat().st_ino
    report = export(target, rows, objects)
    assert report.unchanged
    assert report.written == 0 and report.linked == 0
    assert listing(target) == before
    assert target.stat().st_ino == folder_inode
    assert leftovers(target.parent) == []


def test_changing_one_caption_rewrites_only_what_shows_it(objects, target, tmp_path):
    rows = [image_row(objects, tmp_path, i, f"/p/{i}.jpg", caption=f"c{i}") for i in range(3)]
    export(target, rows, objects, stats=False)  # caption statistics change too: see test_stats_files_*
    before = listing(target)
    rows[1] = Row(rows[1].image_id, 0, KEPT, props={**rows[1].props, "caption": "new caption"})
    report = export(target, rows, objects, stats=False)
    after = listing(target)
    stem = f"1.jpg_{rows[1].props['objectid']}"
    rewritten = {f"{stem}.txt", f"{stem}.json", "index.html"}  # the sidecar and gallery show the caption too
    assert not report.unchanged
    assert report.written == len(rewritten)
    assert report.linked == len(report.files) - len(rewritten)
    assert (target / f"{stem}.txt").read_text(encoding="utf-8") == "new caption"
    assert set(after) == set(before)
    for name in after:
        if name in rewritten or name == MANIFEST:
            assert after[name][0] != before[name][0], name
        else:
            assert after[name] == before[name], name  # same inode, mtime and bytes: hard-linked
    assert leftovers(target.parent) == []


def test_removed_image_disappears_from_the_export(objects, target, tmp_path):
    rows = [image_row(objects, tmp_path, i, f"/p/{i}.jpg", caption=f"c{i}") for i in range(3)]
    export(target, rows, objects)
    report = export(target, rows[:2], objects)
    assert not any(p.name.startswith("2.jpg_") for p in target.iterdir())
    assert report.removed == 3  # image, caption, sidecar
    manifest = json.loads((target / MANIFEST).read_text())["files"]
    assert set(manifest) == set(report.files)


def test_a_file_deleted_by_hand_is_restored(objects, target, tmp_path):
    rows = [image_row(objects, tmp_path, i, f"/p/{i}.jpg") for i in range(2)]
    export(target, rows, objects)
    victim = target / f"0.jpg_{rows[0].props['objectid']}.jpg"
    victim.unlink()
    report = export(target, rows, objects)
    assert not report.unchanged
    assert victim.read_bytes() == objects.read(rows[0].props["objectid"])
    assert report.written == 1


def test_manifest_matches_the_files(objects, target, tmp_path):
    rows = [image_row(objects, tmp_path, i, f"/p/{i}.jpg", caption=f"c{i}") for i in range(2)]
    export(target, rows, objects)
    manifest = json.loads((target / MANIFEST).read_text())["files"]
    for name, digest in manifest.items():
        assert hashlib.sha256((target / name).read_bytes()).hexdigest() == digest, name


# --- refusing foreign folders ----------------------------------------------------------------------------


def test_a_foreign_folder_is_refused_and_left_untouched(objects, target, tmp_path):
    target.mkdir(parents=True)
    (target / "my-thesis.docx").write_bytes(b"precious")
    (target / "sub").mkdir()
    (target / "sub" / "notes.txt").write_text("precious too")
    before = sorted((str(p.relative_to(target)), p.stat().st_ino) for p in target.rglob("*"))
    row = image_row(objects, tmp_path, 1, "/p/a.jpg")
    with pytest.raises(ExportRefused) as info:
        export(target, [row], objects)
    assert str(target) in str(info.value)
    assert MANIFEST in str(info.value)
    assert sorted((str(p.relative_to(target)), p.stat().st_ino) for p in target.rglob("*")) == before
    assert (target / "my-thesis.docx").read_bytes() == b"precious"
    assert leftovers(target.parent) == []


def test_a_hidden_foreign_file_counts_too(objects, target, tmp_path):
    target.mkdir(parents=True)
    (target / ".git").mkdir()
    with pytest.raises(ExportRefused):
        export(target, [image_row(objects, tmp_path, 1, "/p/a.jpg")], objects)
    assert (target / ".git").is_dir()


def test_an_empty_existing_folder_is_used(objects, target, tmp_path):
    target.mkdir(parents=True)
    row = image_row(objects, tmp_path, 1, "/p/a.jpg")
    export(target, [row], objects)
    assert (target / MANIFEST).is_file()


def test_a_file_in_place_of_the_folder_is_refused(objects, target, tmp_path):
    target.parent.mkdir(parents=True)
    target.write_text("not a folder")
    with pytest.raises(ExportRefused, match="not a folder"):
        export(target, [image_row(objects, tmp_path, 1, "/p/a.jpg")], objects)
    assert target.read_text() == "not a folder"


def test_a_damaged_manifest_is_refused(objects, target, tmp_path):
    row = image_row(objects, tmp_path, 1, "/p/a.jpg")
    export(target, [row], objects)
    (target / MANIFEST).write_text("{not json")
    before = listing(target)
    with pytest.raises(ExportRefused, match="damaged"):
        export(target, [row, image_row(objects, tmp_path, 2, "/p/b.jpg")], objects)
    assert listing(target) == before


# --- atomicity -------------------------------------------------------------------------------------------


def test_a_failure_midway_leaves_the_previous_export_intact(objects, target, tmp_path, monkeypatch):
    rows = [image_row(objects, tmp_path, i, f"/p/{i}.jpg", caption=f"c{i}") for i in range(2)]
    export(target, rows, objects)
    before, folder_inode = listing(target), target.stat().st_ino
    more = rows + [image_row(objects, tmp_path, i, f"/p/{i}.jpg", caption=f"c{i}") for i in range(2, 5)]

    from beprepared_dagster.export import atomic

    real_place, calls = atomic.place_object, []

    def failing_place(objects, object_id, dest):
        calls.append(dest)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_place(objects, object_id, dest)

    monkeypatch.setattr(atomic, "place_object", failing_place)
    with pytest.raises(OSError, match="No space left"):
        export(target, more, objects)
    assert len(calls) >= 3  # the failure really happened midway (other new images were placed)
    assert listing(target) == before
    assert target.stat().st_ino == folder_inode
    assert leftovers(target.parent) == []

    # And the next export works normally.
    monkeypatch.setattr(atomic, "place_object", real_place)
    report = export(target, more, objects)
    assert report.images == 5
    assert len(list(target.glob("*.jpg"))) == 5


def test_a_failing_first_export_leaves_no_folder(objects, target, tmp_path, monkeypatch):
    rows = [image_row(objects, tmp_path, i, f"/p/{i}.jpg") for i in range(3)]

    from beprepared_dagster.export import atomic

    def failing_place(objects, object_id, dest):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomic, "place_object", failing_place)
    with pytest.raises(OSError):
        export(target, rows, objects)
    assert not target.exists()
    assert leftovers(target.parent) == []


def test_missing_object_fails_the_export_without_touching_the_old_one(objects, target, tmp_path):
    rows = [image_row(objects, tmp_path, 1, "/p/a.jpg")]
    export(target, rows, objects)
    before = listing(target)
    lost = image_row(objects, tmp_path, 2, "/p/b.jpg")
    os.unlink(objects.path(lost.props["objectid"]))
    with pytest.raises(FileNotFoundError):
        export(target, rows + [lost], objects)
    assert listing(target) == before
    assert leftovers(target.parent) == []


def test_export_creates_missing_parent_folders(objects, tmp_path):
    deep = tmp_path / "a" / "b" / "c" / "out"
    export(deep, [image_row(objects, tmp_path, 1, "/p/a.jpg")], objects)
    assert (deep / MANIFEST).is_file()


def test_empty_export(objects, target):
    report = export(target, [], objects)
    assert sorted(p.name for p in target.iterdir()) == sorted(
        ["index.html", STATS_HTML, STATS_JSON, MANIFEST]
    )
    assert report.images == 0 and sorted(report.files) == sorted(["index.html", STATS_HTML, STATS_JSON])
    assert report.stats is not None and report.stats["images"] == 0


def test_export_folder_permissions_follow_the_umask(objects, target, tmp_path):
    """The staging folder comes from mkdtemp (mode 0700); the swapped-in export must be a normal folder that
    another user (a trainer, a web server) can read."""
    old = os.umask(0o022)
    try:
        export(target, [image_row(objects, tmp_path, 1, "/p/a.jpg")], objects)
        assert target.stat().st_mode & 0o777 == 0o755
        export(target, [image_row(objects, tmp_path, 2, "/p/b.jpg")], objects)  # the swapped-in folder too
        assert target.stat().st_mode & 0o777 == 0o755
        assert all(p.stat().st_mode & 0o044 == 0o044 for p in target.iterdir())
    finally:
        os.umask(old)


def test_an_export_made_from_the_same_inputs_is_not_planned_again(objects, target, tmp_path, monkeypatch):
    """An unchanged re-run skips planning (statistics, gallery, file list) when the rows, the Save node and
    the export code are what the last export was made from and every file is as written; an edited file or a
    changed row goes the full way and is rewritten."""
    from beprepared_dagster.export import dataset

    rows = [image_row(objects, tmp_path, i, f"/p/{i}.jpg", caption=f"c{i}") for i in range(3)]
    first = export(target, rows, objects)
    real = dataset.render_gallery

    def planned(*args, **kwargs):
        raise AssertionError("the export was planned again")

    monkeypatch.setattr(dataset, "render_gallery", planned)
    again = export(target, rows, objects)
    assert again.unchanged and (again.images, again.captions) == (first.images, first.captions) == (3, 3)
    assert again.object_ids == first.object_ids[:12]
    assert again.stats == json.loads(json.dumps(first.stats))  # read back from the export's statistics file
    caption = next(target.glob("*.txt"))
    caption.write_text("edited in place", encoding="utf-8")
    monkeypatch.setattr(dataset, "render_gallery", real)
    restored = export(target, rows, objects)
    assert not restored.unchanged and caption.read_text(encoding="utf-8") != "edited in place"
    edited = Row(rows[0].image_id, rows[0].seq, KEPT, props={**rows[0].props, "caption": "new"})
    changed = export(target, [edited, *rows[1:]], objects)
    assert not changed.unchanged and changed.written >= 1


# --- small updates in place --------------------------------------------------------------------------------


def test_a_few_new_images_are_added_in_place_without_rebuilding_the_folder(objects, target, tmp_path):
    rows = [image_row(objects, tmp_path, i, f"/p/{i}.jpg", caption=f"c{i}") for i in range(40)]
    export(target, rows, objects)
    before, folder = listing(target), target.stat().st_ino
    new = image_row(objects, tmp_path, 99, "/p/new.jpg", caption="the new one")
    report = export(target, rows + [new], objects)

    after = listing(target)
    stem = f"new.jpg_{new.props['objectid']}"
    assert {f"{stem}.jpg", f"{stem}.txt", f"{stem}.json"} <= set(after) - set(before)
    assert (target / f"{stem}.txt").read_text() == "the new one"
    assert target.stat().st_ino == folder  # the same folder, not a rebuilt one
    images = [n for n in before if n.endswith((".jpg", ".txt"))]
    assert images and all(after[n][:2] == before[n][:2] for n in images)  # untouched, not re-linked
    assert report.images == 41 and report.written < 10
    manifest = json.loads((target / MANIFEST).read_text())
    assert set(manifest["files"]) == set(after) - {MANIFEST}
    assert leftovers(target.parent) == []
    assert export(target, rows + [new], objects).unchanged


def test_an_in_place_update_removes_dropped_images_and_stray_files(objects, target, tmp_path):
    rows = [image_row(objects, tmp_path, i, f"/p/{i}.jpg", caption=f"c{i}") for i in range(40)]
    export(target, rows, objects)
    (target / "notes.txt").write_text("dropped in by hand")
    dropped = f"1.jpg_{rows[1].props['objectid']}"
    export(target, [r for i, r in enumerate(rows) if i != 1], objects)
    names = set(listing(target))
    assert "notes.txt" not in names and not any(n.startswith(dropped) for n in names)
    assert set(json.loads((target / MANIFEST).read_text())["files"]) == names - {MANIFEST}


def test_a_crash_between_renames_is_reconciled_by_the_next_export(objects, target, tmp_path, monkeypatch):
    rows = [image_row(objects, tmp_path, i, f"/p/{i}.jpg", caption=f"c{i}") for i in range(40)]
    export(target, rows, objects)
    more = rows + [image_row(objects, tmp_path, 100 + i, f"/p/n{i}.jpg", caption=f"n{i}") for i in range(3)]
    real_replace, calls = os.replace, []

    def crashing_replace(src, dst):
        calls.append(dst)
        if len(calls) == 4:
            raise OSError(5, "Input/output error")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crashing_replace)
    with pytest.raises(OSError):
        export(target, more, objects)
    monkeypatch.setattr(os, "replace", real_replace)
    assert leftovers(target.parent) == []
    report = export(target, more, objects)
    assert report.images == 43
    manifest = json.loads((target / MANIFEST).read_text())["files"]
    assert set(manifest) == set(listing(target)) - {MANIFEST}
    for name, sha in manifest.items():
        assert hashlib.sha256((target / name).read_bytes()).hexdigest() == sha, name


def test_a_change_to_most_files_rebuilds_the_folder_and_swaps_it_in(objects, target, tmp_path):
    rows = [image_row(objects, tmp_path, i, f"/p/{i}.jpg", caption=f"c{i}") for i in range(80)]
    export(target, rows, objects)
    folder = target.stat().st_ino
    recaptioned = [Row(r.image_id, r.seq, r.status, props={**r.props, "caption": "new"}) for r in rows]
    export(target, recaptioned, objects)
    assert target.stat().st_ino != folder  # a new folder swapped in at once
    assert all(p.read_text() == "new" for p in target.glob("*.txt"))
