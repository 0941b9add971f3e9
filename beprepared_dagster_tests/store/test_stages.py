"""Unit tests of per-stage rows (`store.stages`): writing and reading rows, keeping `updated_at` when nothing
changed, and `stale_images` (which images a stage must recompute).

Uses a real DuckDB file in a temp folder; each `db.connect()` is its own transaction, so `current_timestamp`
differs between writes (a short sleep makes sure).

Not covered here: the executor deciding what to write (executor tests) and the node cache / fingerprints
tables (`store.cache`), beyond what stale_images needs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from beprepared_dagster.store import stages
from beprepared_dagster.store.db import Database
from beprepared_dagster.store.stages import ABSENT, ERROR, KEPT, REJECTED, Row

WF = "wf"
FP, FP2 = "f" * 64, "e" * 64
A, B, C = "a" * 64, "b" * 64, "c" * 64


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(tmp_path / "beprepared.duckdb")


def write(db: Database, stage: str, rows: list[Row], fingerprint: str = FP, workflow: str = WF) -> int:
    time.sleep(0.01)  # distinct transaction timestamps
    with db.connect() as conn:
        return stages.write_rows(conn, workflow, stage, fingerprint, "run-1", rows)


def read(db: Database, stage: str, ids: list[str] | None = None, workflow: str = WF) -> dict[str, list[Row]]:
    with db.connect() as conn:
        return stages.read_rows(conn, workflow, stage, ids)


def stale(db: Database, stage: str, upstream: list[str], ids: list[str], fingerprint: str = FP) -> set[str]:
    with db.connect() as conn:
        return stages.stale_images(conn, WF, stage, fingerprint, upstream, ids)


def kept(image_id: str, seq: int = 0, **props) -> Row:
    return Row(image_id, seq, KEPT, props={"objectid": image_id, **props})


# --- write / read ----------------------------------------------------------------------------------------


def test_rows_round_trip(db: Database):
    props = {
        "objectid": A,
        "original_path": "/photos/ünïcode-名前.png",
        "width": 640,
        "score": 0.1,
        "tiny": 1e-07,
        "flag": True,
        "none": None,
        "tags": ["a", "b"],
        "nested": {"k": [1, 2.5, {"x": "<script>"}]},
        "caption": 'quote " and \\ backslash\nnewline',
    }
    rows = [
        Row(A, 0, KEPT, props=props),
        Row(B, 0, REJECTED, "too small: edge 10 < min_edge 512", "filter_by_size", {"objectid": B}),
        Row(C, 0, ERROR, "error: see the run log", "convert_format", {}),
    ]
    assert write(db, "s1", rows) == 3
    got = read(db, "s1")
    assert sorted(got) == [A, B, C]
    for row in rows:
        [back] = got[row.image_id]
        assert back.same_content(row)
        assert back.props == row.props
        assert back.updated_at is not None
    assert got[B][0].reason == "too small: edge 10 < min_edge 512"
    assert got[B][0].at_stage == "filter_by_size"


def test_read_rows_filters_by_image_and_groups_seqs_in_order(db: Database):
    write(db, "merge", [kept(A, 1, branch="b"), kept(A, 0, branch="a"), kept(B)])
    got = read(db, "merge", [A, C])
    assert list(got) == [A]
    assert [(r.seq, r.props["branch"]) for r in got[A]] == [(0, "a"), (1, "b")]
    assert read(db, "merge", []) == {}


def test_rows_are_per_workflow_and_stage(db: Database):
    write(db, "s1", [kept(A)])
    write(db, "s2", [kept(B)])
    write(db, "s1", [kept(C)], workflow="other")
    assert list(read(db, "s1")) == [A]
    assert list(read(db, "s2")) == [B]
    assert list(read(db, "s1", workflow="other")) == [C]


def test_rewriting_replaces_all_seqs_of_an_image(db: Database):
    write(db, "merge", [kept(A, 0, branch="x"), kept(A, 1, branch="y"), kept(B)])
    # Now only one branch keeps A: seq 1 must not linger (it would export A twice).
    write(db, "merge", [Row(A, 0, KEPT, props={"objectid": A, "branch": "x"})])
    got = read(db, "merge")
    assert [r.seq for r in got[A]] == [0]
    assert [r.seq for r in got[B]] == [0]  # other images untouched


def test_write_rows_of_nothing(db: Database):
    assert write(db, "s1", []) == 0
    assert read(db, "s1") == {}


def test_read_export_gives_kept_rows_of_present_images_with_their_stored_text(db: Database):
    from beprepared_dagster.store import files
    from beprepared_dagster.store.files import FileEntry

    D = "d" * 64
    write(db, "load", [kept(A, 1, branch="y"), kept(A, 0, branch="x"), kept(B), kept(D)])
    write(db, "load", [Row(C, 0, REJECTED, "too small", "load", {"objectid": C})])
    with db.connect() as conn:
        present = [FileEntry(f"/in/{i}.jpg", 1, 1, i) for i in (A, C, D, "e" * 64)]
        files.replace_index(conn, "/in", present, [])
        files.replace_index(conn, "/elsewhere", [FileEntry("/elsewhere/b.jpg", 1, 1, B)], [])
        found = stages.read_export(conn, WF, "load", ["/in"])
    # B's file is not under the Load folder asked for; C was rejected; e has no row yet.
    assert [(r.image_id, r.seq, r.props.get("branch")) for r in found.rows] == [
        (A, 0, "x"),
        (A, 1, "y"),
        (D, 0, None),
    ]
    assert (found.gone, found.unprocessed) == (1, 1)
    for row in found.rows:  # the text as stored: what an export's digest hashes
        assert json.loads(row.text) == row.props
    with db.connect() as conn:
        both = stages.read_export(conn, WF, "load", ["/in", "/elsewhere"], parse=False)
        nowhere = stages.read_export(conn, WF, "load", [])
    assert [r.image_id for r in both.rows] == [A, A, B, D] and (both.gone, both.unprocessed) == (0, 1)
    assert all(r.props == {} and json.loads(r.text)["objectid"] == r.image_id for r in both.rows)
    assert (nowhere.rows, nowhere.gone, nowhere.unprocessed) == ([], 4, 0)


# --- updated_at ------------------------------------------------------------------------------------------


def test_unchanged_rows_keep_updated_at_and_changed_rows_get_a_new_one(db: Database):
    assert write(db, "s1", [kept(A, caption="x"), kept(B, caption="y")]) == 2
    first = read(db, "s1")
    assert write(db, "s1", [kept(A, caption="x"), kept(B, caption="changed")]) == 1
    second = read(db, "s1")
    assert second[A][0].updated_at == first[A][0].updated_at
    assert second[B][0].updated_at > first[B][0].updated_at
    assert second[B][0].props["caption"] == "changed"


def test_identical_rewrite_changes_nothing(db: Database):
    rows = [kept(A, score=0.1, tiny=1e-07, name="名前"), Row(B, 0, REJECTED, "r", "s1", {"objectid": B})]
    write(db, "s1", rows)
    first = read(db, "s1")
    assert write(db, "s1", rows) == 0
    assert {k: [r.updated_at for r in v] for k, v in read(db, "s1").items()} == {
        k: [r.updated_at for r in v] for k, v in first.items()
    }


@pytest.mark.parametrize(
    "change",
    [
        lambda r: Row(r.image_id, r.seq, REJECTED, "now rejected", "s1", r.props),
        lambda r: Row(r.image_id, r.seq, KEPT, None, None, {**r.props, "width": 1}),
        lambda r: Row(r.image_id, r.seq + 1, KEPT, None, None, r.props),
    ],
    ids=["status", "props", "seq"],
)
def test_any_content_change_bumps_updated_at(db: Database, change):
    original = kept(A, width=640)
    write(db, "s1", [original])
    before = read(db, "s1")[A][0].updated_at
    assert write(db, "s1", [change(original)]) == 1
    assert read(db, "s1")[A][0].updated_at > before


def test_a_second_seq_appearing_is_a_change(db: Database):
    write(db, "merge", [kept(A, 0)])
    before = read(db, "merge")[A][0].updated_at
    assert write(db, "merge", [kept(A, 0), kept(A, 1)]) == 1
    assert all(r.updated_at > before for r in read(db, "merge")[A])


def test_unchanged_rows_older_than_their_upstream_get_a_new_updated_at(db: Database):
    """A merge keeps only its kept inputs: another input's rejection changing leaves its rows identical. Its
    old timestamp would stay older than that input, so it would be stale forever (the runner gave up with
    "planning did not settle"); given its upstream, write_rows stamps it anew (content unchanged)."""
    write(db, "left", [kept(A)])
    write(db, "right", [Row(A, 0, REJECTED, "too small: 512", "right", {"objectid": A})])
    write(db, "merge", [kept(A)])
    write(db, "right", [Row(A, 0, REJECTED, "too small: 600", "right", {"objectid": A})])
    assert stale(db, "merge", ["left", "right"], [A]) == {A}
    time.sleep(0.01)
    with db.connect() as conn:
        assert stages.write_rows(conn, WF, "merge", FP, "run-2", [kept(A)], upstream=["left", "right"]) == 0
    assert stale(db, "merge", ["left", "right"], [A]) == set()
    # Not newer upstream: the old timestamp stays, so nothing below goes stale for nothing.
    before = read(db, "merge")[A][0].updated_at
    time.sleep(0.01)
    with db.connect() as conn:
        stages.write_rows(conn, WF, "merge", FP, "run-3", [kept(A)], upstream=["left", "right"])
    assert read(db, "merge")[A][0].updated_at == before


# --- stale_images ----------------------------------------------------------------------------------------


def test_stale_images_missing_rows(db: Database):
    write(db, "up", [kept(A), kept(B)])
    write(db, "down", [kept(A)])
    assert stale(db, "down", ["up"], [A, B]) == {B}


def test_stale_images_fresh_rows_are_not_stale(db: Database):
    write(db, "up", [kept(A)])
    write(db, "down", [kept(A)])
    assert stale(db, "down", ["up"], [A]) == set()


def test_stale_images_other_fingerprint(db: Database):
    write(db, "up", [kept(A), kept(B)])
    write(db, "down", [kept(A)], fingerprint=FP)
    write(db, "down", [kept(B)], fingerprint=FP2)
    assert stale(db, "down", ["up"], [A, B], fingerprint=FP) == {B}
    assert stale(db, "down", ["up"], [A, B], fingerprint=FP2) == {A}


def test_stale_images_older_than_upstream(db: Database):
    write(db, "up", [kept(A, caption="x"), kept(B, caption="y")])
    write(db, "down", [kept(A), kept(B)])
    # Upstream recomputed: A changed, B came out identical (keeps its timestamp).
    write(db, "up", [kept(A, caption="new"), kept(B, caption="y")])
    assert stale(db, "down", ["up"], [A, B]) == {A}


def test_stale_images_with_several_upstreams(db: Database):
    write(db, "left", [kept(A), kept(B)])
    write(db, "right", [kept(A), kept(B)])
    write(db, "merge", [kept(A), kept(B)])
    write(db, "right", [kept(B, changed=True)])
    assert stale(db, "merge", ["left", "right"], [A, B]) == {B}


def test_stale_images_error_rows_are_retried(db: Database):
    write(db, "up", [kept(A), kept(B)])
    write(db, "down", [kept(A), Row(B, 0, ERROR, "error: see the run log", "down", {"objectid": B})])
    assert stale(db, "down", ["up"], [A, B]) == {B}


def test_stale_images_rejected_and_absent_rows_are_results_not_failures(db: Database):
    write(db, "up", [kept(A), kept(B)])
    write(db, "down", [Row(A, 0, REJECTED, "r", "down", {}), Row(B, 0, ABSENT, "not under /x", "down", {})])
    assert stale(db, "down", ["up"], [A, B]) == set()


def test_stale_images_without_upstream(db: Database):
    write(db, "load", [kept(A)])
    assert stale(db, "load", [], [A, B]) == {B}
    assert stale(db, "load", [], []) == set()


def test_stale_images_only_for_the_asked_images(db: Database):
    write(db, "up", [kept(A), kept(B)])
    assert stale(db, "down", ["up"], [A]) == {A}


def test_stale_by_stage_answers_each_stage_as_stale_images_does(db: Database):
    """Planning asks for every stage at once: the same answer per stage as one question each, across
    missing rows, another fingerprint, a recomputed upstream, errors, several upstreams and none."""
    write(db, "load", [kept(A), kept(B), kept(C)])
    write(db, "left", [kept(A), kept(B)])
    write(db, "right", [kept(A), kept(B), Row(C, 0, ERROR, "error: x", "right", {"objectid": C})])
    write(db, "merge", [kept(A), kept(B), kept(C)])
    write(db, "merge", [kept(C)], fingerprint=FP2)
    write(db, "left", [kept(A, changed=True)])
    specs = [
        ("load", FP, []),
        ("left", FP, ["load"]),
        ("right", FP, ["load"]),
        ("merge", FP, ["left", "right"]),
        ("never_ran", FP2, ["merge"]),
    ]
    ids = [A, B, C]
    with db.connect() as conn:
        together = stages.stale_by_stage(conn, WF, specs, ids)
        one_by_one = {name: stages.stale_images(conn, WF, name, fp, ups, ids) for name, fp, ups in specs}
    assert together == one_by_one
    assert together == {"load": set(), "left": {C}, "right": {C}, "merge": {A, C}, "never_ran": {A, B, C}}


def test_counts_count_images_per_status(db: Database):
    write(
        db,
        "s1",
        [kept(A, 0), kept(A, 1), Row(B, 0, REJECTED, "r", "s1", {}), Row(C, 0, ERROR, "e", "s1", {})],
    )
    with db.connect() as conn:
        assert stages.counts(conn, WF, "s1") == {KEPT: 1, REJECTED: 1, ERROR: 1}
