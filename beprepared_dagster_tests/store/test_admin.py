"""`store.admin`: listing, clearing and importing what a workspace stores, on real DuckDB and SQLite files
(written through the store's own functions, no Dagster).

Not covered here: the command line around it (`test_cli.py`), and how the label sensor folds the undo
entries that `clear` appends into Dagster (the sensors' tests).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from beprepared_dagster.errors import StoreError
from beprepared_dagster.store import admin, cache, stages
from beprepared_dagster.store.objects import hash_file
from beprepared_dagster.store.stages import KEPT, Row
from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster_tests.conftest import make_images
from beprepared_dagster_tests.store.test_legacy import make_original_workspace

SIZE_FP = hashlib.sha256(b"FilterBySize min_edge=512").hexdigest()
CONVERT_FP = hashlib.sha256(b"ConvertFormat JPEG").hexdigest()
PROBE_FP = hashlib.sha256(b"probe").hexdigest()


def image_id(n: int) -> str:
    return hashlib.sha256(f"image {n}".encode()).hexdigest()


def seeded_store(root: Path, images: int = 3) -> WorkspaceStore:
    """A workspace with two described nodes, an undescribed one (like Load's probe), stage rows, objects
    and labels in two domains."""
    store = WorkspaceStore(root)
    ids = [image_id(n) for n in range(images)]
    with store.db.connect() as conn:
        cache.describe(conn, SIZE_FP, "FilterBySize", 1, {"min_edge": 512, "max_edge": None})
        cache.describe(conn, CONVERT_FP, "ConvertFormat", 1, {"format": "JPEG"})
        cache.store(conn, SIZE_FP, {f"digest{n}": {"kept": True} for n in range(2)})
        cache.store(conn, CONVERT_FP, {i: {"kept": True, "set": {"format": "JPEG"}} for i in ids})
        cache.store(conn, PROBE_FP, {i: {"kept": True} for i in ids})
        stages.write_rows(conn, "dogs", "filter_by_size", SIZE_FP, None, [Row(i, 0, KEPT) for i in ids])
        stages.write_rows(conn, "dogs", "convert_format", CONVERT_FP, None, [Row(i, 0, KEPT) for i in ids])
    for n in range(images):
        store.objects.put_bytes(f"image {n}".encode())
    store.journal.append_many(
        [
            ("default", "filter", ids[0], {"keep": True}),
            ("default", "filter", ids[1], {"keep": False}),
            ("default", "tag", ids[0], {"tags": ["dog"], "rejected": False, "version": 1}),
            ("other", "filter", ids[2], {"keep": True}),
        ]
    )
    return store


def test_list_computed_names_counts_and_patterns(tmp_path):
    store = seeded_store(tmp_path / "ws")
    entries = admin.list_computed(store, aliases={PROBE_FP: "Load.probe"})
    assert [(e.name, e.results, e.stage_rows, e.stages) for e in entries] == [
        ("ConvertFormat", 3, 3, ["dogs/convert_format"]),
        ("FilterBySize", 2, 3, ["dogs/filter_by_size"]),
        ("Load.probe", 3, 0, []),
    ]
    assert entries[1].params == {"min_edge": 512, "max_edge": None}
    assert [e.name for e in admin.list_computed(store, "filterby*")] == ["FilterBySize"]
    assert [e.fingerprint for e in admin.list_computed(store, SIZE_FP[:10] + "*")] == [SIZE_FP]
    assert [e.name for e in admin.list_computed(store, "load*")] == []  # unnamed without the alias
    assert admin.list_computed(store, "unknown")[0].fingerprint == PROBE_FP


def test_list_labels_by_domain_kind_and_pattern(tmp_path):
    store = seeded_store(tmp_path / "ws")
    store.journal.append("default", "filter", image_id(1), None)  # undone: no longer counted
    labels = admin.list_labels(store)
    assert [(e.name, e.domain, e.labeled, e.breakdown) for e in labels] == [
        ("humanfilter", "default", 1, {"kept": 1, "rejected": 0}),
        ("humantag", "default", 1, {"rejected": 0}),
        ("humanfilter", "other", 1, {"kept": 1, "rejected": 0}),
    ]
    assert [e.name for e in admin.list_labels(store, "HumanTag*")] == ["humantag"]
    assert [e.domain for e in admin.list_labels(store, domain="other")] == ["other"]
    assert admin.list_labels(WorkspaceStore(tmp_path / "empty")) == []


def test_clear_removes_matching_results_and_undoes_labels_keeping_history(tmp_path):
    store = seeded_store(tmp_path / "ws")
    entries_before = len(store.journal.since(0))
    done = admin.clear(
        store, admin.list_computed(store, "FilterBySize"), admin.list_labels(store, domain="default")
    )
    assert (done.results, done.stage_rows, done.labels) == (2, 3, 3)
    assert [e.name for e in admin.list_computed(store)] == ["ConvertFormat", "unknown"]
    ids = [image_id(n) for n in range(3)]
    with store.db.connect() as conn:  # the rows stay readable but are stale: their stage runs again
        assert len(stages.read_rows(conn, "dogs", "filter_by_size")) == 3
        assert stages.stale_images(conn, "dogs", "filter_by_size", SIZE_FP, [], ids) == set(ids)
        assert stages.stale_images(conn, "dogs", "convert_format", CONVERT_FP, [], ids) == set()
    assert [e.domain for e in admin.list_labels(store)] == ["other"]
    undo = store.journal.since(0)[entries_before:]
    assert len(undo) == 3 and all(x.value is None and x.labeler == "db clear" for x in undo)
    assert admin.clear(store, [], admin.list_labels(store, domain="default")).labels == 0


def test_import_of_a_beprepared_dagster_workspace_is_verified_and_idempotent(tmp_path):
    source = seeded_store(tmp_path / "src")
    tampered = source.objects.path(image_id(2))
    tampered.write_bytes(b"not what the name says")
    target = WorkspaceStore(tmp_path / "dst")
    target.journal.append("default", "filter", image_id(1), {"keep": True})  # differs from the source
    report = admin.import_workspace(target, tmp_path / "src", aliases={PROBE_FP: "Load.probe"})
    assert report.format == "beprepared-dagster"
    assert (report.objects_copied, report.objects_present) == (2, 0)
    assert (report.labels_imported, report.labels_present, report.computed_imported) == (3, 0, 8)
    assert report.skipped == {
        "object whose content does not match its SHA-256 name": 1,
        "label differs from the one already here (kept this workspace's)": 1,
    }
    assert not target.objects.has(image_id(2)) and target.objects.has(image_id(0))
    assert target.journal.latest("default", "filter")[image_id(1)].value == {"keep": True}
    imported = target.journal.latest("default", "tag")[image_id(0)]
    assert imported.labeler == f"import:{source.root}"
    assert {e.name: e.results for e in admin.list_computed(target)} == {
        "ConvertFormat": 3,
        "FilterBySize": 2,
        "unknown": 3,
    }
    again = admin.import_workspace(target, tmp_path / "src")
    assert (again.objects_copied, again.labels_imported, again.computed_imported) == (0, 0, 0)
    assert (again.objects_present, again.labels_present, again.computed_present) == (2, 3, 8)


def test_import_filters_by_pattern_and_domain(tmp_path):
    seeded_store(tmp_path / "src")
    only_size = admin.import_workspace(
        WorkspaceStore(tmp_path / "a"), tmp_path / "src", pattern="FilterBySize"
    )
    assert (only_size.computed_imported, only_size.labels_imported) == (2, 0)
    other = admin.import_workspace(WorkspaceStore(tmp_path / "b"), tmp_path / "src", domain="other")
    assert (other.computed_imported, other.labels_imported) == (0, 1)


def test_import_of_an_original_workspace_never_unpickles(tmp_path):
    marker = tmp_path / "pwned"
    ids = make_original_workspace(tmp_path / "old", marker)
    target = WorkspaceStore(tmp_path / "dst")
    report = admin.import_workspace(target, tmp_path / "old")
    assert report.format == "original beprepared"
    assert (report.objects_copied, report.labels_imported, report.labels_rekeyed) == (1, 8, 2)
    assert report.skipped["object whose content does not match its SHA-256 name"] == 1
    assert sum(n for reason, n in report.skipped.items() if reason.startswith("unsafe pickle")) == 2
    assert target.objects.read(ids["a"]) == b"image bytes of a.jpg"
    assert target.journal.latest("default", "filter")[ids["c"]].value == {"keep": True}
    assert target.journal.latest("default", "caption")[ids["a"]].labeler == f"import:{tmp_path / 'old'}"
    assert ids["d"] not in target.journal.latest("default", "filter")
    assert not marker.exists()
    again = admin.import_workspace(target, tmp_path / "old" / "_beprepared")
    assert (again.objects_copied, again.labels_imported, again.labels_present) == (0, 0, 8)
    assert not marker.exists()


def test_import_refuses_what_is_not_a_workspace(tmp_path):
    store = seeded_store(tmp_path / "ws")
    (tmp_path / "plain").mkdir()
    with pytest.raises(StoreError, match="is not a workspace"):
        admin.import_workspace(store, tmp_path / "plain")
    with pytest.raises(StoreError, match="the workspace being imported into"):
        admin.import_workspace(store, tmp_path / "ws")


def test_import_adopts_the_other_workspaces_references_to_unchanged_sources(tmp_path):
    images = make_images(tmp_path / "photos", 3, 40, 30)
    source = WorkspaceStore(tmp_path / "src")
    source.db.schema_version()  # a workspace: its database exists
    ids = []
    for path in images:
        st = path.stat()
        ids.append(hash_file(path))
        assert source.objects.add_source(path, ids[-1], st.st_size, st.st_mtime_ns) == "referenced"
    images[2].write_bytes(b"edited since")  # its reference no longer holds
    target = WorkspaceStore(tmp_path / "dst")
    report = admin.import_workspace(target, tmp_path / "src")
    assert report.objects_copied == 2
    assert report.skipped == {"reference to a source file that changed or is gone": 1}
    assert [target.objects.is_source(i) for i in ids] == [True, True, False]
    assert target.objects.read(ids[0]) == images[0].read_bytes()
    again = admin.import_workspace(target, tmp_path / "src")
    assert (again.objects_copied, again.objects_present) == (0, 2)
