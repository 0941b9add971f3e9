"""End to end: labels given after a "Materialize all" backfill reach Dagster and the export, under a real
`dagster dev` driven over GraphQL exactly as the UI drives it (issue: after the backfill, the label sensor
skipped "nothing to apply" until the last image was labeled).

Discovery → Materialize all → All → Launch backfill (the UI's own queries and `launchPartitionBackfill`
params; no label run meanwhile, since nothing is labeled) → 3 of the 4 images waiting in HumanFilter labeled
(appended to the label journal) → within two label-sensor intervals a run of exactly those 3 partitions, the
4th still pending, and Save following by itself with `waiting_for_label` → tags for the 3 → the export holds
them, captioned and tagged. Takes about 2 minutes, most of it the backfill daemon's 30 s steps.

Does not cover the browser (e2e/test_labels_into_dagster.py), re-labels and undo after a backfill
(orchestration/test_label_histories.py, in process), or the Save's preview and thumbnails.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from beprepared_dagster.orchestration.instance import ensure_dagster_home
from beprepared_dagster.store.stages import read_rows
from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster_tests.conftest import make_image
from beprepared_dagster_tests.e2e.dagster_dev import (
    ASSET_QUERY,
    BACKFILL_STATUS_QUERY,
    GROUP_ASSETS_QUERY,
    LAUNCH_ASSET_LOADER_QUERY,
    LAUNCH_PARTITION_BACKFILL_MUTATION,
    MATERIALIZATIONS_QUERY,
    PARTITION_KEYS_QUERY,
    SENSOR_TICKS_QUERY,
    TERMINAL_FAILURES,
    TIMED_RUNS_QUERY,
    WORKSPACE_QUERY,
    DagsterDev,
    free_port,
    sha256_file,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(360)]

WORKFLOW, REPOSITORY = "bf", "__repository__"
HF, HT = "human_filter", "human_tag"
LABEL_INTERVAL = 5
# FilterBySize(min_edge=200) bounds the shorter side: 320x240 passes, 160x120 is rejected. Discovery orders
# partitions by path, so the three labeled images (00-02) are contiguous and their run covers nothing else.
IMAGES = {
    "00_big": (320, 240),
    "01_big": (320, 240),
    "02_big": (320, 240),
    "03_small": (160, 120),
    "04_big": (320, 240),
    "05_small": (160, 120),
}
LABELED, STILL_WAITING = ["00_big", "01_big", "02_big"], "04_big"


def test_labels_after_a_materialize_all_backfill_flow_to_dagster_and_the_export(tmp_path: Path) -> None:
    photos, ws, flow = tmp_path / "photos", tmp_path / "ws", tmp_path / "backfill_flow.py"
    keys = {
        name: sha256_file(make_image(photos / f"{name}.jpg", *size, seed=700 + i))
        for i, (name, size) in enumerate(IMAGES.items())
    }
    ws.mkdir()
    flow.write_text(
        "from beprepared_dagster import *\n"
        f'with Workspace(r"{ws}", name="{WORKFLOW}") as workspace:\n'
        f'    (Load(r"{photos}") >> FilterBySize(min_edge=200) >> HumanFilter >> SetCaption("ohwx")\n'
        '     >> HumanTag(tags=["dog", "cat"]) >> Save)\n'
        "    workspace.run()\n"
    )
    env = {
        "DAGSTER_HOME": str(ensure_dagster_home(WorkspaceStore(ws))),
        "BEPREPARED_WORKFLOWS": str(flow),
        "BEPREPARED_SENSOR_INTERVAL": "5",
        "BEPREPARED_LABEL_SENSOR_INTERVAL": str(LABEL_INTERVAL),
        "BEPREPARED_LABELING_PORT": str(free_port()),
    }
    with DagsterDev(
        "beprepared_dagster.definitions", free_port(), env, tmp_path / "dev.log", cwd=tmp_path
    ) as dev:
        started = time.monotonic()
        location = wait_for(lambda: _location(dev), 120, "the code location")
        wait_for(lambda: _runs(dev, "discovery", done=True), 120, "the discovery run")
        print(f"discovery done at {time.monotonic() - started:.0f}s")
        _backfill_everything_like_the_ui(dev, location)
        print(f"backfill complete at {time.monotonic() - started:.0f}s")
        _filter_labels_become_runs_of_exactly_those_partitions(dev, location, ws, keys)
        print(f"filter labels applied and exported at {time.monotonic() - started:.0f}s")
        _tags_reach_the_export(dev, ws, keys)
        print(f"tags exported at {time.monotonic() - started:.0f}s")


def _backfill_everything_like_the_ui(dev: DagsterDev, location: str) -> None:
    launched = dev.graphql(
        LAUNCH_PARTITION_BACKFILL_MUTATION, {"backfillParams": _ui_backfill_params(dev, location)}
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched

    def finished() -> str | None:
        found = dev.graphql(BACKFILL_STATUS_QUERY, {"id": launched["backfillId"]})["partitionBackfillOrError"]
        assert found["__typename"] == "PartitionBackfill", found
        assert found["status"] not in ("FAILED", "COMPLETED_FAILED", "CANCELED"), found
        return found["status"] if found["status"] in ("COMPLETED", "COMPLETED_SUCCESS") else None

    # The backfill daemon steps every 30 s: partitioned stages, then Save, then completion.
    wait_for(finished, 150, "the backfill to complete", interval=2)
    assert _materialized(dev, HF) == len(IMAGES), "the backfill materializes every partition of every stage"
    assert _latest_save(dev, 0)["waiting_for_label"] == f"{len(IMAGES) - 2} at {HF}"
    early = _runs(dev, f"labels-{HF}") + _runs(dev, f"labels-{HT}")
    assert not early, f"nothing is labeled, yet label sensors ran during the backfill: {early}"


def _ui_backfill_params(dev: DagsterDev, location: str) -> dict:
    """What the group page's Materialize all → All → Launch backfill sends (LaunchAssetExecutionButton.tsx
    picks the launch target, LaunchAssetChoosePartitionsDialog.tsx builds the params)."""
    group = {"groupName": WORKFLOW, "repositoryName": REPOSITORY, "repositoryLocationName": location}
    keys = [
        {"path": n["assetKey"]["path"]}
        for n in dev.graphql(GROUP_ASSETS_QUERY, {"group": group})["assetNodes"]
    ]
    loaded = dev.graphql(LAUNCH_ASSET_LOADER_QUERY, {"assetKeys": keys})
    nodes = loaded["assetNodes"]
    assert not loaded["assetNodeAdditionalRequiredKeys"]
    assert all(n["isExecutable"] and not n["isObservable"] for n in nodes)
    partitioned = [n for n in nodes if n["partitionDefinition"]]
    assert partitioned and len(partitioned) < len(nodes), "a mixed partitioned + unpartitioned selection"
    # One partitions space and a job in common: the "job" target. Its job is the hidden asset job, so the
    # params carry the asset selection and the chosen keys ("All" = every key), not a partition set.
    spaces = {
        json.dumps([n["partitionDefinition"][k] for k in ("description", "dimensionTypes")])
        for n in partitioned
    }
    common = [j for j in nodes[0]["jobNames"] if all(j in n["jobNames"] for n in nodes)]
    assert len(spaces) == 1 and common and common[0].startswith("__ASSET_JOB"), (spaces, common)
    found = dev.graphql(PARTITION_KEYS_QUERY, {"path": partitioned[0]["assetKey"]["path"]})[
        "assetNodeOrError"
    ]
    (dimension,) = found["partitionKeysByDimension"]
    assert len(dimension["partitionKeys"]) == len(IMAGES)
    return {
        "tags": [{"key": "dagster/from_ui", "value": "true"}],
        "assetSelection": keys,
        "partitionNames": dimension["partitionKeys"],
        "fromFailure": False,
    }


def _filter_labels_become_runs_of_exactly_those_partitions(
    dev: DagsterDev, location: str, ws: Path, keys: dict[str, str]
) -> None:
    before = {e["runId"] for e in _materializations(dev, HF)}
    labeled_at = time.time()
    # One transaction, so no tick sees 2 of the 3 (that would rightly make two runs; not what this pins).
    WorkspaceStore(ws).journal.append_many([("default", "filter", keys[n], {"keep": True}) for n in LABELED])

    sensor = f"{WORKFLOW}_{HF}_labels"
    try:  # the next tick or the one after; a little slack for the daemon on 2 shared cores
        wait_for(
            lambda: _runs(dev, f"labels-{HF}", labeled_at), 2 * LABEL_INTERVAL + 8, "a run of the labels"
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nlast ticks of {sensor}: {_ticks(dev, location, sensor)}") from None
    runs = wait_for(lambda: _runs(dev, f"labels-{HF}", labeled_at, done=True), 90, "the label run to end")
    assert len(runs) == 1, f"the 3 contiguous labels make one run, not {runs}"
    print(f"label run created {runs[0]['creationTime'] - labeled_at:.1f}s after the labels")

    new = {e["partition"] for e in _materializations(dev, HF) if e["runId"] not in before}
    assert new == {keys[n] for n in LABELED}, "exactly the labeled partitions get new materializations"
    assert _statuses(ws, HF, keys) == {**dict.fromkeys(LABELED, "kept"), STILL_WAITING: "pending"}

    save = wait_for(lambda: _latest_save(dev, labeled_at), 60, "Save to follow the labels by itself")
    assert save["waiting_for_label"] == f"1 at {HF}, {len(LABELED)} at {HT}"
    assert _exported(ws) == set(), "images waiting for their tags are not exported yet"


def _tags_reach_the_export(dev: DagsterDev, ws: Path, keys: dict[str, str]) -> None:
    tagged_at = time.time()
    tags = {"tags": ["dog"], "version": 1}
    WorkspaceStore(ws).journal.append_many([("default", "tag", keys[n], tags) for n in LABELED])

    def exported() -> dict | None:
        save = _latest_save(dev, tagged_at)
        return save if save and _exported(ws) == set(LABELED) else None

    save = wait_for(exported, 90, "the tagged images in the export")
    assert save["waiting_for_label"] == f"1 at {HF}"
    for image in (ws / "output").glob("*.jpg"):
        assert image.with_suffix(".txt").read_text().strip() == "ohwx"
        assert json.loads(image.with_suffix(".json").read_text())["tags"] == ["dog"]


# --- reading Dagster and the workspace -------------------------------------------------------------------


def _location(dev: DagsterDev) -> str | None:
    for entry in dev.graphql(WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"]:
        loaded = entry["locationOrLoadError"]
        if loaded:
            assert loaded["__typename"] == "RepositoryLocation", loaded
            return loaded["name"]
    return None


def _runs(dev: DagsterDev, trigger: str, since: float = 0, done: bool = False) -> list[dict]:
    """Runs one of our sensors created after `since` (epoch s), by `beprepared/trigger` tag; with `done`,
    only once all of them succeeded."""
    tags = [{"key": "beprepared/trigger", "value": trigger}]
    data = dev.graphql(TIMED_RUNS_QUERY, {"filter": {"tags": tags}})["runsOrError"]
    assert data["__typename"] == "Runs", data
    runs = [r for r in data["results"] if r["creationTime"] > since]
    for run in runs:
        assert run["status"] not in TERMINAL_FAILURES, f"run {run['runId']} ended {run['status']}"
    return [] if done and any(r["status"] != "SUCCESS" for r in runs) else runs


def _materializations(dev: DagsterDev, stage: str) -> list[dict]:
    node = dev.graphql(MATERIALIZATIONS_QUERY, {"path": [WORKFLOW, stage]})["assetNodeOrError"]
    assert node["__typename"] == "AssetNode", node
    return node["assetMaterializations"]


def _materialized(dev: DagsterDev, stage: str) -> int:
    node = dev.graphql(ASSET_QUERY, {"path": [WORKFLOW, stage]})["assetNodeOrError"]
    return node["partitionStats"]["numMaterialized"]


def _latest_save(dev: DagsterDev, after: float) -> dict | None:
    """The newest Save materialization's metadata (label → value) if it happened after `after` (epoch s)."""
    events = _materializations(dev, "save")
    if not events or float(events[0]["timestamp"]) / 1000 <= after:
        return None
    entries = events[0]["metadataEntries"]
    return {e["label"]: e.get("text", e.get("intValue", e.get("path"))) for e in entries}


def _ticks(dev: DagsterDev, location: str, sensor: str) -> list[dict]:
    selector = {"repositoryName": REPOSITORY, "repositoryLocationName": location, "sensorName": sensor}
    found = dev.graphql(SENSOR_TICKS_QUERY, {"selector": selector, "limit": 5})["sensorOrError"]
    return found.get("sensorState", {}).get("ticks", found)


def _statuses(ws: Path, stage: str, keys: dict[str, str]) -> dict[str, str]:
    """The stage's outcome per image name in DuckDB, for the images kept above it."""
    names = {keys[n]: n for n in [*LABELED, STILL_WAITING]}
    with WorkspaceStore(ws).db.connect() as conn:
        rows = read_rows(conn, WORKFLOW, stage, list(names))
    return {names[k]: rows[k][0].status for k in names}


def _exported(ws: Path) -> set[str]:
    """Source stems in the export (images are named `<source name>_<object id>.<ext>`)."""
    return {Path(p.stem.rsplit("_", 1)[0]).stem for p in (ws / "output").glob("*.jpg")}
