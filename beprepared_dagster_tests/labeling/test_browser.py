"""The labeling app in headless Debian chromium, checked against the label journal (not only the DOM):
keyboard labeling at full speed, a same-frame burst, re-label and undo, tag numbers, captions, new images
without a reload, a phone with swipes, and login.

Not covered here: the app process killed mid-burst (test_kill.py) and the launch by `dagster dev`
(test_dagster_dev_launch.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from beprepared_dagster.labeling.__main__ import load_workflow_file
from beprepared_dagster_tests.labeling.conftest import (
    CAPTION,
    FILTER,
    TAG,
    Lab,
    acked,
    build_lab,
    open_tab,
    wait_saved,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]

KEEP_KEYS, REJECT_KEYS = ("ArrowUp", "w"), ("ArrowDown", "s")


def outside_requests(page) -> list[str]:
    """Collect every request that leaves 127.0.0.1 (a CDN, fonts, analytics)."""
    found: list[str] = []
    local = ("http://127.0.0.1", "blob:http://127.0.0.1", "data:")
    page.on("request", lambda r: None if r.url.startswith(local) else found.append(r.url))
    return found


def test_label_30_images_by_keyboard_as_fast_as_playwright_presses(tmp_path: Path, serve, page) -> None:
    lab = build_lab(tmp_path, 30, size=(96, 72))
    url = serve(lab.workflows)
    outside = outside_requests(page)
    open_tab(page, url, FILTER)
    keep = [i % 4 != 1 for i in range(30)]
    for i, k in enumerate(keep):
        page.keyboard.press((KEEP_KEYS if k else REJECT_KEYS)[i % 2])
    state = wait_saved(page)
    assert lab.latest("default", "filter") == {
        key: {"keep": k} for key, k in zip(lab.keys, keep, strict=True)
    }
    assert len(lab.journal()) == 30 and len(acked(page)) == 30
    page.wait_for_selector(".bp-done")  # all judged: the done screen, with Continue
    assert state["counts"] == {"total": 30, "kept": 22, "rejected": 8, "remaining": 0}
    page.wait_for_function("document.querySelector('.bp-stats').textContent.includes('22 kept')")
    assert outside == [] and page.errors == []


def test_next_images_are_decoded_ahead_and_shown_in_the_same_frame(lab: Lab, serve, page) -> None:
    url = serve(lab.workflows)
    open_tab(page, url, FILTER)
    page.wait_for_function("window.__bp.preloaded() >= 3", timeout=15000)
    shown = page.evaluate(
        """() => {
            const before = document.querySelector('#bp-labeler .bp-frame img');
            document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowUp', bubbles: true}));
            const img = document.querySelector('#bp-labeler .bp-frame img');  // same task: no frame has passed
            return {changed: img !== before, complete: img.complete, width: img.naturalWidth};
        }"""
    )
    assert shown == {"changed": True, "complete": True, "width": 160}
    wait_saved(page)


def test_a_burst_of_20_keys_in_one_frame_loses_nothing(lab: Lab, serve, page) -> None:
    url = serve(lab.workflows)
    open_tab(page, url, FILTER)
    page.evaluate(
        """() => { for (let i = 0; i < 20; i++) {
            const key = i % 3 ? 'ArrowUp' : 'ArrowDown';
            document.dispatchEvent(new KeyboardEvent('keydown', {key, bubbles: true, cancelable: true}));
        } }"""
    )
    wait_saved(page)
    expected = {key: {"keep": bool(i % 3)} for i, key in enumerate(lab.keys[:12])}
    assert lab.latest("default", "filter") == expected  # 12 images: the last 8 keys met the done screen
    assert len(lab.journal()) == 12 and page.errors == []


def test_relabel_undo_and_no_skipping_ahead(lab: Lab, serve, page) -> None:
    url = serve(lab.workflows)
    open_tab(page, url, FILTER)
    for key in ["w", "w", "s", "w", "w"]:
        page.keyboard.press(key)
    page.keyboard.press("d")  # image 6 is not judged yet: → does not skip it
    assert page.evaluate("window.__bp.state().cursor") == 5
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("a")
    page.wait_for_selector(".bp-frame[data-state='kept']")  # the earlier decision shows as a green border
    page.keyboard.press("s")  # re-label image 4: keep → reject; moves on to image 5 (judged)
    assert page.evaluate("window.__bp.state().cursor") == 4
    wait_saved(page)
    assert lab.latest("default", "filter")[lab.keys[3]] == {"keep": False}
    page.keyboard.press("z")  # undo the re-label: image 4 is kept again, and shown
    page.keyboard.press("Control+z")  # undo the 5th decision: image 5 has no label again
    state = wait_saved(page)
    latest = lab.latest("default", "filter")
    assert latest[lab.keys[3]] == {"keep": True} and latest[lab.keys[4]] is None
    assert state["cursor"] == 4 and state["counts"]["remaining"] == 8
    values = [r["value"] for r in lab.journal()]
    assert values[-3:] == [{"keep": False}, {"keep": True}, None]  # undo appends; nothing is rewritten


def test_tag_numbers_toggle_and_s_rejects(lab: Lab, serve, page) -> None:
    url = serve(lab.workflows)
    open_tab(page, url, TAG)
    for key in ["1", "6", "0", "ArrowRight"]:  # dog, outdoor, dawn (the 10th tag)
        page.keyboard.press(key)
    for key in ["2", "s"]:  # cat, then reject: saved and moved on
        page.keyboard.press(key)
    for key in ["3", "3", "d"]:  # toggled on and off: saved with no tag
        page.keyboard.press(key)
    page.get_by_role("button", name="noon").click()  # the 11th tag has no key: touch or click
    page.keyboard.press("w")
    wait_saved(page)
    latest = lab.latest("tags", "tag")
    assert latest[lab.keys[0]] == {"tags": ["dog", "outdoor", "dawn"], "rejected": False, "version": 1}
    assert latest[lab.keys[1]] == {"tags": ["cat"], "rejected": True, "version": 1}
    assert latest[lab.keys[2]] == {"tags": [], "rejected": False, "version": 1}
    assert latest[lab.keys[3]] == {"tags": ["noon"], "rejected": False, "version": 1}
    page.keyboard.press("ArrowLeft")  # back to image 4: its tags are shown again
    page.wait_for_selector(".bp-tag.on >> text=noon")
    assert page.evaluate("window.__bp.state().counts") == {
        "total": 12,
        "kept": 3,
        "rejected": 1,
        "remaining": 8,
    }


def test_caption_arrows_edit_text_and_navigation_saves(lab: Lab, serve, page) -> None:
    url = serve(lab.workflows)
    open_tab(page, url, CAPTION)
    box = page.locator("textarea.bp-caption")
    assert box.input_value() == "a photo"  # the source caption, ready to edit
    box.click()
    page.keyboard.press("End")
    page.keyboard.type(" of a dg")
    page.keyboard.press("ArrowLeft")  # arrow keys move the caret, they do not navigate
    page.keyboard.type("o")
    page.wait_for_function("window.__bp.state().acked >= 1")  # autosaved while typing, no navigation
    assert lab.latest("caps", "caption")[lab.keys[0]] == {"caption": "a photo of a dog", "version": 1}
    page.keyboard.press("Alt+ArrowRight")
    assert box.input_value() == "a photo"
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")  # emptied: the source caption will be used
    page.keyboard.press("Control+ArrowRight")
    page.keyboard.press("Control+Enter")  # visiting and moving on accepts the caption as it is
    wait_saved(page)
    latest = lab.latest("caps", "caption")
    assert latest[lab.keys[1]] == {"caption": "", "version": 1}
    assert latest[lab.keys[2]] == {"caption": "a photo", "version": 1}
    page.keyboard.press("Escape")  # leave the text: now Ctrl+Z undoes the last decision
    page.keyboard.press("Control+z")
    wait_saved(page)
    assert lab.latest("caps", "caption")[lab.keys[2]] is None
    assert page.evaluate("window.__bp.state().cursor") == 2


def test_new_images_appear_without_a_reload(tmp_path: Path, serve, page) -> None:
    lab = build_lab(tmp_path, 3)
    url = serve(lab.workflows)
    open_tab(page, url, FILTER)
    for _ in range(3):
        page.keyboard.press("w")
    page.wait_for_selector(".bp-done")
    fresh = lab.add_images(2)
    page.wait_for_function(f"window.__bp.state().id === '{fresh[0]}'", timeout=20000)
    page.keyboard.press("s")
    wait_saved(page)
    assert lab.latest("default", "filter")[fresh[0]] == {"keep": False}
    assert page.evaluate("window.__bp.state().counts") == {
        "total": 5,
        "kept": 3,
        "rejected": 1,
        "remaining": 1,
    }


def swipe(page, dx: int) -> None:
    """A real touch swipe across the image (CDP touch events, as a finger makes them)."""
    box = page.locator(".bp-frame").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for step in range(1, 6):
        cdp.send(
            "Input.dispatchTouchEvent",
            {"type": "touchMove", "touchPoints": [{"x": x + dx * step / 5, "y": y}]},
        )
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def test_phone_layout_swipes_and_screenshot(lab: Lab, serve, browser, tmp_path: Path) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    outside = outside_requests(page)
    try:
        url = serve(lab.workflows)
        open_tab(page, url, FILTER)
        assert "width=device-width" in page.locator("meta[name=viewport]").get_attribute("content")
        swipe(page, 160)
        swipe(page, -160)
        page.wait_for_function("window.__bp.state().acked === 2")
        latest = lab.latest("default", "filter")
        assert latest[lab.keys[0]] == {"keep": True} and latest[lab.keys[1]] == {"keep": False}
        for name in ("Keep", "Reject"):
            box = page.get_by_role("button", name=name).bounding_box()
            assert box["height"] >= 56 and box["width"] >= 100, (name, box)  # well above 44 px targets
        assert not page.locator(".bp-keys").is_visible()  # no keyboard legend on a touch screen
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, "nothing may scroll sideways"
        shots = Path(os.environ.get("BEPREPARED_SCREENSHOTS", tmp_path))
        shot = shots / "phone-390x844.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10000
        open_tab(page, url, TAG)
        page.screenshot(path=str(shots / "phone-tag-390x844.png"))
        assert outside == []
    finally:
        context.close()


def test_login_on_refuses_anonymous_and_admits_a_user(lab: Lab, serve, page) -> None:
    url = serve(lab.workflows, auth=[("ann", "s3cret")])
    page.goto(url)
    page.wait_for_selector("input[type=password]")
    assert page.locator("#bp-labeler").count() == 0
    status = page.evaluate(f"fetch('display/{lab.keys[0]}').then(r => r.status)")
    assert status == 401
    page.locator("input[type=text]").first.fill("ann")
    page.locator("input[type=password]").fill("s3cret")
    page.keyboard.press("Enter")
    page.wait_for_selector("#bp-labeler .bp-tabs", timeout=30000)  # signed in: the app loads
    open_tab(page, url, FILTER)
    page.keyboard.press("w")
    wait_saved(page)
    (row,) = lab.journal()
    assert row["labeler"] == "ann" and row["value"] == {"keep": True}


TWO_CAPTION_STAGES = """
from beprepared_dagster import *

with Workspace(r"{ws}", name="one") as workspace:
    Load(r"{photos}") >> SetCaption("first source") >> HumanCaption(domain="c1") >> Save
with Workspace(r"{ws}", name="two") as workspace:
    Load(r"{photos}") >> SetCaption("second source") >> HumanCaption(domain="c2") >> Save
"""


def test_two_caption_tabs_never_save_each_others_text(tmp_path: Path, serve, page) -> None:
    """Both tabs share one text area: coming back to a tab must show that tab's caption, not the text the
    other tab left there (which Alt+→ would then save as this image's caption)."""
    ws, photos = tmp_path / "workspace", tmp_path / "photos"
    photos.mkdir()
    file = tmp_path / "two_captions.py"
    file.write_text(TWO_CAPTION_STAGES.format(ws=ws, photos=photos))
    lab = Lab(ws, photos, file, load_workflow_file(file))
    lab.add_images(2)
    url = serve(lab.workflows)
    open_tab(page, url, "one/human_caption")
    box = page.locator("textarea.bp-caption")
    assert box.input_value() == "first source"
    page.click('button.bp-tab[data-tab="two/human_caption"]')
    page.wait_for_function("document.querySelector('textarea.bp-caption').value === 'second source'")
    box.click()
    page.keyboard.press("End")
    page.keyboard.type(" edited")
    page.click('button.bp-tab[data-tab="one/human_caption"]')  # leaving saves tab two's caption
    wait_saved(page)
    assert page.evaluate("window.__bp.state().tab") == "one/human_caption"
    assert box.input_value() == "first source"
    page.keyboard.press("Alt+ArrowRight")  # visiting and moving on accepts the caption shown
    wait_saved(page)
    assert lab.latest("c1", "caption") == {lab.keys[0]: {"caption": "first source", "version": 1}}
    assert lab.latest("c2", "caption") == {lab.keys[0]: {"caption": "second source edited", "version": 1}}
    assert page.errors == []


def test_caption_typed_just_before_leaving_is_saved_not_dropped(lab: Lab, serve, page) -> None:
    """Typing is saved 0.6 s after the last key; closing or hiding the page sooner must still save it (and
    warn while unsaved), not drop the last words."""
    url = serve(lab.workflows)
    open_tab(page, url, CAPTION)
    left = page.evaluate(
        """() => {
          const box = document.querySelector('textarea.bp-caption');
          box.value = 'typed just before leaving';
          box.dispatchEvent(new Event('input'));  // the autosave is 0.6 s away
          const leaving = new Event('beforeunload', { cancelable: true });
          window.dispatchEvent(leaving);
          return { warned: leaving.defaultPrevented, queued: window.__bp.outbox.pending.length };
        }"""
    )
    assert left == {"warned": True, "queued": 1}
    wait_saved(page)
    assert lab.latest("caps", "caption")[lab.keys[0]] == {
        "caption": "typed just before leaving",
        "version": 1,
    }
    assert len(lab.journal()) == 1 and page.errors == []


CHAIN_WORKFLOW = """
from beprepared_dagster import *

with Workspace(r"{ws}", name="chain") as workspace:
    Load(r"{photos}") >> HumanFilter() >> HumanTag(tags=["dog", "cat"]) >> Save
"""


def test_enter_on_a_finished_tab_moves_to_the_next_stage_while_its_run_is_in_flight(
    lab: Lab, serve, page, tmp_path: Path
) -> None:
    """The HumanTag tab below has no image yet (no run has applied the filter labels): Enter goes there."""
    file = tmp_path / "chain.py"
    file.write_text(CHAIN_WORKFLOW.format(ws=lab.root, photos=lab.photos))
    url = serve(load_workflow_file(file))
    open_tab(page, url, "chain/human_filter")
    for _ in range(12):
        page.keyboard.press("w")
    page.wait_for_selector(".bp-done")
    wait_saved(page)
    page.keyboard.press("Enter")
    page.wait_for_function("window.__bp.state().tab === 'chain/human_tag'", timeout=10000)
    assert "tab=chain%2Fhuman_tag" in page.url or "tab=chain/human_tag" in page.url
