"""The app process (`python -m beprepared_dagster.labeling`) killed with SIGKILL in the middle of a burst of key
presses: every label the browser saw acknowledged is in the journal, the screen says SAVE FAILED, and once the
app is back the browser's retries save the rest — exactly once each.

Not covered: a Dagster process killed (the app never writes DuckDB, so Dagster processes hold nothing the
app needs; see orchestration tests for sensors catching up)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from beprepared_dagster_tests.e2e.dagster_dev import free_port, wait_for
from beprepared_dagster_tests.labeling.conftest import FILTER, build_lab, open_tab, wait_saved

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]


class AppProcess:
    """The standalone app in its own process group."""

    def __init__(self, file: Path, port: int, log: Path) -> None:
        self.file, self.port, self.log = file, port, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> AppProcess:
        cmd = [sys.executable, "-m", "beprepared_dagster.labeling", "--port", str(self.port), str(self.file)]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{self.port}/beprepared/health"
        wait_for(lambda: requests.get(url, timeout=2).json().get("tabs"), 90, "the labeling app", 0.2)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def test_sigkill_mid_burst_loses_no_acknowledged_label(tmp_path: Path, page) -> None:
    lab = build_lab(tmp_path, 40, size=(64, 48))
    port = free_port()
    app = AppProcess(lab.file, port, tmp_path / "app.log").start()
    try:
        open_tab(page, f"http://127.0.0.1:{port}/", FILTER)
        keep = [i % 3 != 2 for i in range(40)]
        for i, k in enumerate(keep):
            if i == 15:
                app.kill()  # mid-burst: some writes are in flight, the rest queue up in the browser
            page.keyboard.press("ArrowUp" if k else "ArrowDown")
        acked = page.evaluate("window.__bp.outbox.acked")
        journal = {row["request_id"]: row for row in lab.journal()}
        for write in acked:  # every acknowledged label is on disk, as acknowledged
            row = journal[write["rid"]]
            assert (row["image_id"], row["value"], row["id"]) == (write["id"], write["value"], write["j"])
        assert len(acked) >= 1, "some labels should have been saved before the kill"
        page.wait_for_selector(".bp-save[data-state='failed']", timeout=20000)
        assert page.evaluate("window.__bp.state().unsaved") > 0

        app.start()  # the same port again: the browser's retries go through
        wait_saved(page, timeout=45000)
    finally:
        app.kill()
    rows = lab.journal()
    assert len(rows) == 40 and len({r["request_id"] for r in rows}) == 40  # each exactly once
    assert lab.latest("default", "filter") == {
        key: {"keep": k} for key, k in zip(lab.keys, keep, strict=True)
    }
    assert page.evaluate("window.__bp.outbox.acked.length") == 40
