"""Labels the browser has not seen acknowledged survive a reload of the page: they live in localStorage, the
reloaded page sends them, and each lands in the journal exactly once — also those whose write reached the
journal while the answer was lost. And display copies are made in the background, before any page asks.

Not covered: the app process killed (test_kill.py, test_code_server_kill.py)."""

from __future__ import annotations

import time

import pytest

from beprepared_dagster.labeling.service import LabelingService
from beprepared_dagster_tests.labeling.conftest import FILTER, Lab, open_tab, wait_saved


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_reload_with_pending_labels_sends_each_exactly_once(lab: Lab, serve, page) -> None:
    url = serve(lab.workflows)
    mode = {"now": "lost answer"}

    def writes(route) -> None:
        if '"writes"' not in (route.request.post_data or "") or mode["now"] == "pass":
            route.continue_()
        elif mode["now"] == "lost answer":  # the journal gets the write; the browser never hears back
            route.fetch()
            route.abort()
        else:
            route.abort()  # offline: nothing reaches the app

    page.route("**/gradio_api/component_server/**", writes)
    open_tab(page, url, FILTER)
    keep = [True, False, True, True, False, True]
    for k in keep[:3]:
        page.keyboard.press("w" if k else "s")
    wait_until(
        lambda: lab.store.journal.max_id() == 3, pause=page.wait_for_timeout
    )  # the page's events must run
    mode["now"] = "offline"
    for k in keep[3:]:
        page.keyboard.press("w" if k else "s")
    stored = page.evaluate(
        "Object.values(JSON.parse(localStorage.getItem(Object.keys(localStorage).find(k => k.startsWith('bp-outbox:')))))"
        ".flatMap(o => o.writes)"
    )
    assert [w["value"] for w in stored] == [
        {"keep": k} for k in keep
    ]  # all six wait in the browser's storage
    assert page.evaluate("window.__bp.state().acked") == 0

    page.reload()
    page.wait_for_selector("#bp-labeler .bp-frame img.bp-img, #bp-labeler .bp-done", timeout=30000)
    mode["now"] = "pass"
    wait_saved(page, timeout=30000)
    rows = lab.journal()
    assert len(rows) == 6 and sorted(r["request_id"] for r in rows) == sorted(w["rid"] for w in stored)
    assert [r["value"] for r in rows] == [{"keep": k} for k in keep]
    assert page.evaluate("window.__bp.outbox.acked.length") == 6
    page.wait_for_function("window.__bp.state().counts.remaining === 6")
    assert page.evaluate("localStorage.length") == 0  # nothing left to send
    assert page.errors == []


def test_display_copies_are_made_ahead_in_the_background(lab: Lab) -> None:
    for key in lab.keys[:4]:
        lab.store.journal.append("default", "filter", key, {"keep": True})
    service = LabelingService(lab.workflows[:1])
    assert service.prefetch() == 8  # the 8 images still to label, before any page asked
    display = service.workspaces[str(lab.root)].display
    wait_until(lambda: display.pending() == 0 and all(display._cached(k) for k in lab.keys[4:]))
    assert not any(display._cached(k) for k in lab.keys[:4])
    assert service.prefetch() == 0  # made once


def wait_until(check, timeout: float = 20, pause=lambda ms: time.sleep(ms / 1000)) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        pause(100)
