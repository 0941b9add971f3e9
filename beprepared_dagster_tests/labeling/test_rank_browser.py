"""HumanRank in headless Debian chromium, checked against the label journal and Dagster: 30 comparisons by
keyboard (←, →, ↓ for a tie, Z to undo) are all stored once and become materializations with scores; on a
phone the two images stack, a swipe picks one, and the layout is captured in a screenshot.

Not covered here: the fit and pair choice (ranking/), the sensor (ranking/test_human_rank.py)."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from beprepared_dagster.labeling.__main__ import load_workflow_file
from beprepared_dagster.orchestration.instance import open_instance
from beprepared_dagster.store.stages import read_rows
from beprepared_dagster_tests.labeling.conftest import Lab, wait_saved
from beprepared_dagster_tests.labeling.test_browser import swipe

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

RANK_WORKFLOW = """
from beprepared_dagster import *

with Workspace(r"{ws}", name="best") as workspace:
    Load(r"{photos}") >> HumanRank(comparisons_per_image=4) >> Sorted(key=lambda i: i.rank_score, reverse=True) >> Take(5) >> Save
"""
TAB = "best/human_rank"


def rank_lab(tmp_path: Path, count: int) -> Lab:
    ws, photos = tmp_path / "workspace", tmp_path / "photos"
    photos.mkdir()
    file = tmp_path / "rank_workflow.py"
    file.write_text(RANK_WORKFLOW.format(ws=ws, photos=photos))
    lab = Lab(ws, photos, file, load_workflow_file(file), size=(120, 90))
    lab.add_images(count)
    return lab


def open_rank(page, url: str) -> None:
    page.goto(f"{url}?tab={TAB}")
    page.wait_for_selector("#bp-labeler .bp-pair img.bp-img", timeout=30000)
    page.wait_for_function("window.__bp.state().pair !== null")


def test_30_keyboard_comparisons_are_stored_once_and_materialized(tmp_path: Path, serve, page) -> None:
    lab = rank_lab(tmp_path, 12)
    url = serve(lab.workflows)
    open_rank(page, url)
    keys = ["ArrowLeft", "ArrowRight", "a", "d", "ArrowDown", "s"] * 5  # 30 decisions, 10 of them ties
    shown, pairs = [], []
    for i, key in enumerate(keys):
        # As a person would: judge the next pair once it is on screen (a loaded CI machine can be a pair behind).
        page.wait_for_function("window.__bp.state().pair !== null", timeout=15000)
        pair = page.evaluate("window.__bp.state().pair")
        assert not pairs or set(pair) != set(pairs[-1]), "the same pair twice in a row"
        pairs.append(pair)
        page.keyboard.press(key)
        shown.append((pair, key))
        if i == 9:
            page.keyboard.press("z")  # undo the 10th: that pair comes back and is judged again
            assert page.evaluate("window.__bp.state().pair") == pair
            page.keyboard.press(key)
    wait_saved(page)
    rows = [r for r in lab.journal() if r["kind"] == "rank"]
    assert len(rows) == 32 and len({r["request_id"] for r in rows}) == 32  # 31 comparisons + 1 undo
    undo = [r for r in rows if "undo" in r["value"]]
    assert len(undo) == 1 and undo[0]["value"]["undo"] == rows[9]["request_id"]
    judged = [r for r in rows if "vs" in r["value"] and r["request_id"] != rows[9]["request_id"]]
    expected = {"ArrowLeft": 1, "a": 1, "ArrowRight": 0, "d": 0, "ArrowDown": 0.5, "s": 0.5}
    assert [((r["image_id"], r["value"]["vs"]), r["value"]["result"]) for r in judged] == [
        (tuple(pair), expected[key]) for pair, key in shown
    ]
    page.wait_for_function("window.__bp.state().counts.comparisons === 30", timeout=15000)
    assert page.errors == []

    summary = lab.workflows[0].run(wait=False)  # the stage materializes with every image's score
    with lab.store.db.connect() as conn:
        ranked = read_rows(conn, "best", "human_rank")
    counts = {k: r[0].props.get("rank_comparisons", 0) for k, r in ranked.items()}
    assert sum(counts.values()) == 60
    done = {k for k, r in ranked.items() if r[0].status == "kept"}
    assert done == {k for k, n in counts.items() if n >= 4}
    instance = open_instance(lab.store)
    assert done <= set(instance.get_materialized_partitions(dg.AssetKey(["best", "human_rank"])))
    assert summary.waiting.get("human_rank", 0) == 12 - len(done)


def test_phone_stacks_the_pair_and_a_swipe_picks_one(tmp_path: Path, serve, browser) -> None:
    lab = rank_lab(tmp_path, 4)
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    try:
        url = serve(lab.workflows)
        open_rank(page, url)
        top = page.locator(".bp-choice[data-side='a']").bounding_box()
        bottom = page.locator(".bp-choice[data-side='b']").bounding_box()
        assert bottom["y"] >= top["y"] + top["height"] - 1 and top["width"] > 300  # stacked, full width
        pair = page.evaluate("window.__bp.state().pair")
        swipe(page, -160)  # toward the first image: it is the better one
        page.wait_for_function("window.__bp.state().acked === 1")
        (row,) = lab.journal()
        assert (row["image_id"], row["value"]) == (pair[0], {"vs": pair[1], "result": 1})
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        shots = Path(os.environ.get("BEPREPARED_SCREENSHOTS", tmp_path))
        shot = shots / "phone-rank-390x844.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10000
    finally:
        context.close()
