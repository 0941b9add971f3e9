"""`dagster dev` brings the labeling app up by itself (no second command), inside its code-server process only;
the human-stage asset links to its tab; a code-location reload hands the port to the new code server (one
instance at a time); and after `dagster dev` exits nothing is left and the port is free.

Not covered: labels turning into materializations (orchestration and e2e tests)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests

from beprepared_dagster.orchestration.instance import ensure_dagster_home
from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster_tests.conftest import make_image
from beprepared_dagster_tests.e2e.dagster_dev import (
    DagsterDev,
    free_port,
    port_is_free,
    processes_mentioning,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]

RELOAD = """
mutation Reload($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name) { __typename
    ... on WorkspaceLocationEntry { name locationOrLoadError { __typename } }
    ... on PythonError { message } } }
"""
DESCRIPTION = """
query Asset($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) { __typename
    ... on AssetNode { description } } }
"""
LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_dagster_dev_serves_the_app_from_its_code_server(tmp_path: Path) -> None:
    photos, ws = tmp_path / "photos", tmp_path / "workspace"
    for i in range(3):
        make_image(photos / f"p{i}.jpg", 96, 72, seed=i)
    workflow_file = tmp_path / "launch_workflow.py"
    workflow_file.write_text(
        "from beprepared_dagster import *\n"
        f'with Workspace(r"{ws}", name="launch") as workspace:\n'
        f'    Load(r"{photos}") >> HumanFilter() >> Save\n'
    )
    ws.mkdir()
    app_port = free_port()
    env = {
        "DAGSTER_HOME": str(ensure_dagster_home(WorkspaceStore(ws))),
        "BEPREPARED_WORKFLOWS": str(workflow_file),
        "BEPREPARED_LABELING_PORT": str(app_port),
    }
    env.pop("BEPREPARED_LABELING", None)
    health = f"http://127.0.0.1:{app_port}/beprepared/health"
    dev = DagsterDev("beprepared_dagster.definitions", free_port(), env, tmp_path / "dev.log", cwd=tmp_path)
    with dev:
        first = wait_for(
            lambda: requests.get(health, timeout=2).json(), 120, "the labeling app under dagster dev"
        )
        assert first["tabs"] == ["launch/human_filter"]
        assert " api grpc " in cmdline(first["pid"]), cmdline(first["pid"])  # the code server, nothing else
        node = dev.graphql(DESCRIPTION, {"path": ["launch", "human_filter"]})["assetNodeOrError"]
        assert f"http://127.0.0.1:{app_port}/?tab=launch/human_filter" in (node["description"] or ""), node

        (location,) = dev.graphql(LOCATIONS)["workspaceOrError"]["locationEntries"]
        reloaded = dev.graphql(RELOAD, {"name": location["name"]})["reloadRepositoryLocation"]
        assert reloaded["__typename"] == "WorkspaceLocationEntry", reloaded

        def taken_over() -> dict | None:
            now = requests.get(health, timeout=2).json()
            return now if now["pid"] != first["pid"] else None

        second = wait_for(taken_over, 90, "the reloaded code server to serve the app")
        assert not alive(first["pid"]), "the old code server (and its app) should be gone"
        assert " api grpc " in cmdline(second["pid"])
        servers = [p for p, cmd in processes_mentioning(" api grpc ") if os.getpgid(p) == dev.pgid]
        assert servers == [second["pid"]], servers  # one code server, one app
    assert not alive(second["pid"])
    assert port_is_free(app_port), "the labeling port must be free once dagster dev has exited"
    assert processes_mentioning(str(workflow_file)) == []
