"""End to end: `dagster dev` alone (no second command) serves the labeling app from its code server; 30 images
labeled by keyboard in headless Chromium become label-journal entries, the label sensor turns them into
materializations of exactly those partitions (checked over GraphQL), Save exports the kept ones, and nothing
is left listening after `dagster dev` stops.

Does not cover the app's key map, undo or phone layout in detail (labeling/test_browser.py does) or
re-labels (orchestration/test_human_stages.py)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import requests

from beprepared_dagster.orchestration.instance import ensure_dagster_home
from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster_tests.conftest import make_image
from beprepared_dagster_tests.e2e.dagster_dev import (
    ASSET_QUERY,
    LAUNCH_MUTATION,
    RUN_QUERY,
    RUNS_QUERY,
    TERMINAL_FAILURES,
    WORKSPACE_QUERY,
    DagsterDev,
    asset_job_params,
    free_port,
    port_is_free,
    sha256_file,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(420)]

WORKFLOW, COUNT = "labels", 30
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]


def stats(dev: DagsterDev, stage: str) -> dict:
    node = dev.graphql(ASSET_QUERY, {"path": [WORKFLOW, stage]})["assetNodeOrError"]
    assert node["__typename"] == "AssetNode", node
    return node


def runs_with(dev: DagsterDev, key: str, value: str) -> list[dict]:
    data = dev.graphql(RUNS_QUERY, {"filter": {"tags": [{"key": key, "value": value}]}})["runsOrError"]
    assert data["__typename"] == "Runs", data
    for run in data["results"]:
        assert run["status"] not in TERMINAL_FAILURES, f"run {run['runId']} ended {run['status']}"
    return data["results"]


def test_keyboard_labels_become_materializations_under_dagster_dev(tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "needs Debian's chromium (apt-get install -y chromium)"
    photos, ws, flow = tmp_path / "photos", tmp_path / "ws", tmp_path / "labels_flow.py"
    keys = [
        sha256_file(make_image(photos / f"img_{i:02d}.jpg", 320, 240, seed=500 + i)) for i in range(COUNT)
    ]
    ws.mkdir()
    flow.write_text(
        "from beprepared_dagster import *\n"
        f'with Workspace(r"{ws}", name="{WORKFLOW}") as workspace:\n'
        f'    Load(r"{photos}") >> HumanFilter >> SetCaption("ohwx") >> Save\n'
        "    workspace.run()\n"
    )
    lab_port = free_port()
    env = {
        "DAGSTER_HOME": str(ensure_dagster_home(WorkspaceStore(ws))),
        "BEPREPARED_WORKFLOWS": str(flow),
        "BEPREPARED_SENSOR_INTERVAL": "5",
        "BEPREPARED_LABEL_SENSOR_INTERVAL": "5",
        "BEPREPARED_LABELING_PORT": str(lab_port),
    }
    dev = DagsterDev("beprepared_dagster.definitions", free_port(), env, tmp_path / "dev.log", cwd=tmp_path)
    try:
        with dev:
            _run_scenario(dev, ws, keys, lab_port, chromium)
    except BaseException:
        print(dev.log_tail())
        raise
    assert wait_for(lambda: port_is_free(lab_port), 20, "the labeling port to be free after dagster dev")


def _run_scenario(dev: DagsterDev, ws: Path, keys: list[str], lab_port: int, chromium: str) -> None:
    def location() -> str | None:
        entries = dev.graphql(WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"]
        for entry in entries:
            loaded = entry["locationOrLoadError"]
            if loaded:
                assert loaded["__typename"] == "RepositoryLocation", loaded
                return loaded["name"]
        return None

    location_name = wait_for(location, 120, "the code location")
    wait_for(lambda: runs_with(dev, "beprepared/trigger", "discovery"), 120, "the discovery run")
    wait_for(
        lambda: stats(dev, "load")["partitionStats"]["numMaterialized"] == COUNT, 120, "load of 30 images"
    )
    assert stats(dev, "human_filter")["partitionStats"]["numMaterialized"] == 0  # nobody labeled yet

    lab = f"http://127.0.0.1:{lab_port}/"
    wait_for(lambda: _answers(lab + "beprepared/health"), 60, "the labeling app started by dagster dev")
    keep = [i % 3 != 2 for i in range(COUNT)]
    _label_by_keyboard(lab + f"?tab={WORKFLOW}/human_filter", keep, chromium)
    latest = WorkspaceStore(ws).journal.latest("default", "filter")
    assert {k: latest[k].value for k in keys} == {k: {"keep": v} for k, v in zip(keys, keep, strict=True)}

    def applied() -> bool:
        node = stats(dev, "human_filter")
        done = set(node["assetPartitionStatuses"]["materializedPartitions"])
        below = stats(dev, "set_caption")["partitionStats"]["numMaterialized"]
        return done == set(keys) and below == COUNT

    wait_for(applied, 180, "the label sensor's runs to materialize all 30 labeled partitions")
    label_runs = runs_with(dev, "beprepared/trigger", "labels-human_filter")
    assert 1 <= len(label_runs) <= 3, label_runs  # labels arrive in ranges, not one run per image

    node = stats(dev, "save")
    params = asset_job_params(location_name, [WORKFLOW, "save"], {}, node["jobNames"][0])
    launched = dev.graphql(LAUNCH_MUTATION, {"executionParams": params})["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    def saved() -> bool:
        run = dev.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
        assert run["status"] not in TERMINAL_FAILURES, run
        return run["status"] == "SUCCESS"

    wait_for(saved, 120, "Save")
    assert len(list((ws / "output").glob("*.jpg"))) == sum(keep)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _label_by_keyboard(url: str, keep: list[bool], chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            page.wait_for_selector("#bp-labeler .bp-frame img.bp-img", timeout=30000)
            page.wait_for_function("window.__bp && window.__bp.state().tab !== null")
            started = time.monotonic()
            for i, k in enumerate(keep):
                page.keyboard.press(("w", "ArrowUp")[i % 2] if k else ("s", "ArrowDown")[i % 2])
            page.wait_for_function("window.__bp.state().unsaved === 0", timeout=30000)
            print(f"30 labels pressed and acknowledged in {time.monotonic() - started:.2f}s")
        finally:
            browser.close()
