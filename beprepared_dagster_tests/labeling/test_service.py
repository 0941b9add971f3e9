"""Handler tests: the server functions' logic on a real workspace (DuckDB + label journal), no Gradio.

Not covered here: the HTTP/login layer (test_app_http.py) and the browser client (test_browser.py)."""

from __future__ import annotations

import uuid

import pytest

from beprepared_dagster.labeling.service import BACK, LabelingService
from beprepared_dagster.store import order
from beprepared_dagster_tests.labeling.conftest import CAPTION, FILTER, TAG, Lab, build_lab


def rid() -> str:
    return uuid.uuid4().hex


def write(tab: str, image_id: str, value, request_id: str | None = None) -> dict:
    return {"rid": request_id or rid(), "tab": tab, "id": image_id, "value": value}


def test_tabs_cover_every_human_stage_in_workflow_order(lab: Lab) -> None:
    service = LabelingService(lab.workflows)
    tabs = service.tabs()
    assert [t["key"] for t in tabs] == [FILTER, TAG, CAPTION]
    assert tabs[1]["rows"] == [
        ["dog", "cat", "bird", "fish"],
        ["indoor", "outdoor"],
        ["day", "night", "dusk", "dawn", "noon"],
    ]
    assert tabs[1]["version"] == 1 and tabs[0]["kind"] == "filter" and tabs[2]["upstream"] == "set_caption"


def test_start_lists_images_in_insertion_order_with_dataset_wide_counts(lab: Lab) -> None:
    service = LabelingService(lab.workflows)
    with lab.store.db.connect() as conn:
        expected = order.ordered_ids(conn, "pick")
    first = service.start({"tab": FILTER})
    assert first["ok"] and [it["id"] for it in first["items"]] == expected == lab.keys
    assert first["cursor"] == 0 and first["counts"] == {
        "total": 12,
        "kept": 0,
        "rejected": 0,
        "remaining": 12,
    }
    item = first["items"][0]
    assert (
        item["obj"] == item["id"] and (item["w"], item["h"]) == (160, 120) and item["name"] == "img_0000.jpg"
    )

    result = service.record(
        {"writes": [write(FILTER, k, {"keep": i % 3 != 0}) for i, k in enumerate(lab.keys[:7])]}
    )
    assert [r["status"] for r in result["results"]] == ["ok"] * 7
    again = LabelingService(lab.workflows).start({"tab": FILTER})  # a fresh page load
    assert again["counts"] == {"total": 12, "kept": 4, "rejected": 3, "remaining": 5}
    # It opens a few images before the first unlabeled one, so ← reaches earlier decisions.
    assert again["start"] == max(0, 7 - BACK)
    assert again["items"][again["cursor"]]["id"] == lab.keys[7]
    assert again["items"][0]["value"] == {"keep": False}


def test_record_is_durable_idempotent_and_attributes_the_labeler(lab: Lab) -> None:
    service = LabelingService(lab.workflows)
    request_id = rid()
    one = service.record({"writes": [write(FILTER, lab.keys[0], {"keep": True}, request_id)]}, labeler="ann")
    retry = service.record(
        {"writes": [write(FILTER, lab.keys[0], {"keep": True}, request_id)]}, labeler="ann"
    )
    assert one["results"][0]["j"] == retry["results"][0]["j"]  # a retried request is not a second entry
    rows = lab.journal()
    assert len(rows) == 1 and rows[0]["labeler"] == "ann" and rows[0]["request_id"] == request_id
    assert rows[0]["value"] == {"keep": True} and (rows[0]["domain"], rows[0]["kind"]) == (
        "default",
        "filter",
    )


@pytest.mark.parametrize(
    ("tab", "value", "reason"),
    [
        (FILTER, {"keep": "yes"}, "keep"),
        (FILTER, {"keep": True, "extra": 1}, "keep"),
        (TAG, {"tags": ["dog", "unicorn"], "rejected": False}, "unicorn"),
        (TAG, {"tags": "dog"}, "list"),
        (CAPTION, {"caption": 5}, "string"),
        (CAPTION, {"caption": "x" * 20001}, "longer"),
        ("nope/none", {"keep": True}, "no such tab"),
        ([FILTER], {"keep": True}, "no such tab"),  # unhashable: must not fail the rest of the batch
        ({"k": 1}, {"keep": True}, "no such tab"),
        (FILTER, [True], "object"),
    ],
)
def test_invalid_writes_are_refused_one_by_one(lab: Lab, tab: str, value, reason: str) -> None:
    service = LabelingService(lab.workflows)
    good = write(FILTER, lab.keys[1], {"keep": False})
    result = service.record({"writes": [write(tab, lab.keys[0], value), good]})
    bad, ok = result["results"]
    assert bad["status"] == "invalid" and reason in bad["error"]
    assert ok["status"] == "ok"
    assert [r["image_id"] for r in lab.journal()] == [lab.keys[1]]


def test_bad_ids_and_payloads_never_raise(lab: Lab) -> None:
    service = LabelingService(lab.workflows)
    result = service.record({"writes": [write(FILTER, "../../etc/passwd", {"keep": True})]})
    assert result["results"][0]["status"] == "invalid"
    assert service.record({"writes": []})["ok"] is False
    assert service.record("junk")["ok"] is False  # type: ignore[arg-type]
    assert service.start({"tab": "x/y"})["ok"] is False
    assert service.poll({"tab": [FILTER]})["ok"] is False
    assert service.page({"tab": FILTER, "after": "f" * 64})["error"] == "gone"
    assert service.poll({"tab": FILTER, "tail": True, "after": "f" * 64})["gone"]
    with pytest.raises(ValueError):
        service.display("../../etc/passwd")
    assert service.display("0" * 64) is None


def test_tag_values_are_normalised_and_versioned(lab: Lab) -> None:
    service = LabelingService(lab.workflows)
    service.record(
        {"writes": [write(TAG, lab.keys[0], {"tags": ["outdoor", "dog", "dog"], "rejected": False})]}
    )
    service.record({"writes": [write(TAG, lab.keys[1], {"tags": [], "rejected": True})]})
    # An undo restores an older value as it was, older version included.
    service.record({"writes": [write(TAG, lab.keys[2], {"tags": ["cat"], "rejected": False, "version": 0})]})
    latest = lab.latest("tags", "tag")
    assert latest[lab.keys[0]] == {"tags": ["dog", "outdoor"], "rejected": False, "version": 1}
    counts = service.start({"tab": TAG})["counts"]
    assert counts == {"total": 12, "kept": 1, "rejected": 1, "remaining": 10}  # version 0 is not labeled


def test_caption_items_carry_the_source_caption(lab: Lab) -> None:
    service = LabelingService(lab.workflows)
    first = service.start({"tab": CAPTION})
    assert first["items"][0]["text"] == "a photo"
    service.record({"writes": [write(CAPTION, lab.keys[0], {"caption": "a red dog"})]})
    assert lab.latest("caps", "caption")[lab.keys[0]] == {"caption": "a red dog", "version": 1}


def test_poll_brings_new_images_and_other_devices_labels(tmp_path) -> None:
    lab = build_lab(tmp_path, 12)
    service = LabelingService(lab.workflows, refresh_interval=0)
    first = service.start({"tab": FILTER})
    journal = first["journal"]
    other = LabelingService(lab.workflows)  # a second device/tab
    other.record({"writes": [write(FILTER, lab.keys[3], {"keep": False})]})
    fresh = lab.add_images(3)
    last = first["items"][-1]["id"]
    polled = service.poll({"tab": FILTER, "since": journal, "tail": True, "after": last})
    assert [c["id"] for c in polled["changes"]] == [lab.keys[3]] and polled["changes"][0]["value"] == {
        "keep": False
    }
    assert [it["id"] for it in polled["items"]] == fresh
    assert polled["counts"] == {"total": 15, "kept": 0, "rejected": 1, "remaining": 14}
    quiet = service.poll({"tab": FILTER, "since": polled["journal"], "tail": True, "after": fresh[-1]})
    assert quiet["changes"] == [] and quiet["items"] == []


def test_undo_to_nothing_counts_as_unlabeled_again(lab: Lab) -> None:
    service = LabelingService(lab.workflows)
    service.record({"writes": [write(FILTER, lab.keys[0], {"keep": True})]})
    service.record({"writes": [write(FILTER, lab.keys[0], None)]})
    started = service.start({"tab": FILTER})
    assert started["counts"]["remaining"] == 12 and started["cursor"] == 0
    assert [r["value"] for r in lab.journal()] == [{"keep": True}, None]


def test_pages_walk_forward_and_back_by_image_id(tmp_path) -> None:
    lab = build_lab(tmp_path, 130, size=(32, 24))
    service = LabelingService(lab.workflows, page_size=50)
    first = service.start({"tab": FILTER})
    assert len(first["items"]) == BACK + 50 and first["more_after"] and not first["more_before"]
    nxt = service.page({"tab": FILTER, "after": first["items"][-1]["id"], "limit": 100})
    assert [it["id"] for it in nxt["items"]] == lab.keys[BACK + 50 : 130] and not nxt["more_after"]
    prev = service.page({"tab": FILTER, "before": lab.keys[100], "limit": 30})
    assert [it["id"] for it in prev["items"]] == lab.keys[70:100] and prev["start"] == 70


def test_a_run_holding_the_database_makes_the_app_wait_not_fail(lab: Lab) -> None:
    """DuckDB lets one process hold the file: the app keeps its last list and says it is busy."""
    import subprocess
    import sys
    import time

    service = LabelingService(lab.workflows, refresh_interval=0, lock_timeout=0.3)
    assert service.start({"tab": FILTER})["ok"]
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(lab.store.db.path)!r}); "
            "print('held', flush=True); time.sleep(4)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        polled = service.poll({"tab": FILTER})
        assert polled["ok"] and polled["busy"] and polled["counts"]["total"] == 12
        fresh = LabelingService(lab.workflows, lock_timeout=0.3).start({"tab": FILTER})
        assert not fresh["ok"] and "busy" in fresh["error"]
        # Saving never touches DuckDB: labels go on while a run holds it.
        result = service.record({"writes": [write(FILTER, lab.keys[0], {"keep": True})]})
        assert result["results"][0]["status"] == "ok"
    finally:
        holder.wait(timeout=30)
    time.sleep(0.1)
    assert service.poll({"tab": FILTER})["busy"] is False
