"""`kill -9` of Dagster's code server while a person labels: the page says the app is away and keeps taking
keys, the location comes back by itself (the watcher asks Dagster's code-server proxy to reload it — no
restart of `dagster dev`, no click on Reload), the page reconnects, every label is in the journal exactly
once, and the label sensor (which died with the code server) turns them all into materializations. After
`dagster dev` exits, no watcher is left.

Not covered: the standalone app killed (test_kill.py), a reload of the page (test_reload_pending.py)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import requests

from beprepared_dagster.orchestration.instance import ensure_dagster_home
from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster_tests.conftest import make_image
from beprepared_dagster_tests.e2e.dagster_dev import (
    ASSET_QUERY,
    DagsterDev,
    free_port,
    processes_mentioning,
    wait_for,
)
from beprepared_dagster_tests.labeling.conftest import Lab, wait_saved

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(480)]

COUNT = 18


def test_kill_9_of_the_code_server_recovers_and_loses_no_label(tmp_path: Path, page) -> None:
    photos, ws = tmp_path / "photos", tmp_path / "workspace"
    for i in range(COUNT):
        make_image(photos / f"p{i:02d}.jpg", 64, 48, seed=50 + i)
    flow = tmp_path / "kill_flow.py"
    flow.write_text(
        "from beprepared_dagster import *\n"
        f'with Workspace(r"{ws}", name="killed") as workspace:\n'
        f'    Load(r"{photos}") >> HumanFilter() >> Save\n'
    )
    ws.mkdir()
    port = free_port()
    env = {
        "DAGSTER_HOME": str(ensure_dagster_home(WorkspaceStore(ws))),
        "BEPREPARED_WORKFLOWS": str(flow),
        "BEPREPARED_LABELING_PORT": str(port),
        "BEPREPARED_LABEL_SENSOR_INTERVAL": "3",
    }
    health = f"http://127.0.0.1:{port}/beprepared/health"
    lab = Lab(ws, photos, flow, [])
    keep = [i % 3 != 1 for i in range(COUNT)]
    dev = DagsterDev("beprepared_dagster.definitions", free_port(), env, tmp_path / "dev.log", cwd=tmp_path)
    with dev:
        first = wait_for(lambda: requests.get(health, timeout=2).json(), 150, "the labeling app")
        page.goto(f"http://127.0.0.1:{port}/?tab=killed/human_filter")
        page.wait_for_function(
            f"window.__bp && (window.__bp.state().counts || {{}}).total === {COUNT}", timeout=150000
        )
        press(page, keep[:6])
        wait_saved(page)

        os.kill(first["pid"], signal.SIGKILL)  # the code server: the app, the sensors, everything in it
        press(page, keep[6:12])  # the page keeps taking keys while the app is away
        page.wait_for_selector(".bp-app[data-connection='away'] .bp-away", timeout=30000)
        again = wait_for(
            lambda: (h := requests.get(health, timeout=2).json())["pid"] != first["pid"] and h,
            180,
            "the app back",
        )
        assert again["tabs"] == ["killed/human_filter"]
        page.wait_for_selector(".bp-app[data-connection='ok']", timeout=30000)
        wait_saved(page, timeout=60000)
        press(page, keep[12:])
        wait_saved(page)

        rows = lab.journal()
        assert len(rows) == COUNT and len({r["request_id"] for r in rows}) == COUNT  # each exactly once
        keys = [r["image_id"] for r in rows]
        assert [r["value"] for r in rows] == [{"keep": k} for k in keep] and len(set(keys)) == COUNT

        def all_materialized() -> bool:
            node = dev.graphql(ASSET_QUERY, {"path": ["killed", "human_filter"]})["assetNodeOrError"]
            return node["partitionStats"]["numMaterialized"] == COUNT

        wait_for(all_materialized, 240, "every label as a materialization (the label sensor is back)", 2)
        assert page.errors == []
    assert processes_mentioning("beprepared_dagster.labeling.watchdog") == []


def press(page, keeps: list[bool]) -> None:
    for k in keeps:
        page.keyboard.press("ArrowUp" if k else "ArrowDown")
