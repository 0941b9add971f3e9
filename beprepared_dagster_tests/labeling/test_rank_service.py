"""The HumanRank tab's handlers without a browser: pairs handed out ahead (never the pair on screen again),
comparisons and undo validated and stored, counters, and the half-size display copies pairs are shown with.

Not covered: the page (test_rank_browser.py)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from beprepared_dagster.labeling.__main__ import load_workflow_file
from beprepared_dagster.labeling.display import PAIR_EDGE
from beprepared_dagster.labeling.service import LabelingService
from beprepared_dagster_tests.labeling.conftest import Lab
from beprepared_dagster_tests.labeling.test_rank_browser import RANK_WORKFLOW, TAB


def test_pairs_comparisons_undo_and_counters(tmp_path: Path) -> None:
    ws, photos = tmp_path / "workspace", tmp_path / "photos"
    photos.mkdir()
    file = tmp_path / "rank.py"
    file.write_text(RANK_WORKFLOW.format(ws=ws, photos=photos))
    lab = Lab(ws, photos, file, load_workflow_file(file), size=(2000, 1500))
    lab.add_images(5)
    service = LabelingService(lab.workflows)
    started = service.start({"tab": TAB})
    assert started["ok"] and started["counts"]["total"] == 5 and started["counts"]["target"] == 10
    pairs = started["pairs"]
    assert len(pairs) == 8 and all(p["a"]["id"] != p["b"]["id"] and p["a"]["size"] == "pair" for p in pairs)
    assert all(
        {p["a"]["id"], p["b"]["id"]} != {q["a"]["id"], q["b"]["id"]}
        for p, q in zip(pairs, pairs[1:], strict=False)
    )
    on_screen = [pairs[0]["a"]["id"], pairs[0]["b"]["id"]]
    more = service.pairs({"tab": TAB, "want": 3, "avoid": [on_screen]})["pairs"]
    assert len(more) == 3 and {more[0]["a"]["id"], more[0]["b"]["id"]} != set(on_screen)

    a, b = on_screen
    writes = [
        {"rid": "rid-00001", "tab": TAB, "id": a, "value": {"vs": b, "result": 1}},
        {"rid": "rid-00002", "tab": TAB, "id": b, "value": {"vs": a, "result": 0.5}},
        {"rid": "rid-00003", "tab": TAB, "id": a, "value": {"undo": "rid-00001"}},
        {"rid": "rid-00004", "tab": TAB, "id": a, "value": {"vs": b, "result": 2}},
        {"rid": "rid-00005", "tab": TAB, "id": a, "value": {"vs": "not-an-id", "result": 1}},
        {"rid": "rid-00006", "tab": TAB, "id": a, "value": {"keep": True}},
    ]
    results = service.record({"writes": writes})["results"]
    assert [r["status"] for r in results] == ["ok", "ok", "ok", "invalid", "invalid", "invalid"]
    assert [r["value"] for r in lab.journal()] == [w["value"] for w in writes[:3]]
    counts = service.poll({"tab": TAB})["counts"]
    assert counts["comparisons"] == 1 and counts["kept"] == 0 and counts["remaining"] == 5  # the undo counts

    found = service.display(pairs[0]["a"]["obj"], "pair")
    with Image.open(found.path) as shown:
        assert max(shown.size) == PAIR_EDGE  # half-size for a pair; the full copy stays at 1600
    with Image.open(service.display(pairs[0]["a"]["obj"]).path) as full:
        assert max(full.size) == 1600
