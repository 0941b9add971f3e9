"""End to end: a workflow file served by a real `dagster dev`, driven only over GraphQL.

Discovery sensor → one range run over the new images → Save launched like the UI's Materialize button →
the export on disk → two more images → a second sensor run over exactly those two.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

from beprepared_dagster.orchestration.instance import ensure_dagster_home
from beprepared_dagster.orchestration.partitions import RANGE_END, RANGE_START
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
    processes_mentioning,
    sha256_file,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

WORKFLOW = "e2e"
PARTITIONED = ["load", "filter_by_size", "convert_format", "set_caption"]
SENSOR = f"{WORKFLOW}_discover_images"
DISCOVERY = {"key": "beprepared/trigger", "value": "discovery"}
# FilterBySize(min_edge=512) bounds the SHORTER side (as in the original beprepared): 640x480 would be
# rejected (480 < 512), so the "big" images are 800x600.
BIG, SMALL = (800, 600), (320, 200)
TOTAL_TIMEOUT = 180


class Clock:
    """One overall deadline, plus step timings printed at the end."""

    def __init__(self, total: float) -> None:
        self.start = self.last = time.monotonic()
        self.total = total
        self.steps: list[tuple[str, float]] = []

    def left(self) -> float:
        return max(1.0, self.total - (time.monotonic() - self.start))

    def mark(self, step: str) -> None:
        now = time.monotonic()
        self.steps.append((step, now - self.last))
        self.last = now

    def report(self) -> str:
        lines = [f"  {step:<44} {secs:6.1f}s" for step, secs in self.steps]
        return "\n".join([*lines, f"  {'total':<44} {time.monotonic() - self.start:6.1f}s"])


def write_workflow(path: Path, ws: Path, photos: Path) -> None:
    path.write_text(
        "from beprepared_dagster import *\n"
        f'with Workspace(r"{ws}", name="{WORKFLOW}") as workspace:\n'
        f'    Load(r"{photos}") >> FilterBySize(min_edge=512) >> ConvertFormat("PNG") >> SetCaption("ohwx") >> Save\n'
        "    workspace.run()\n"
    )


def tags_of(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def discovery_runs(dev: DagsterDev) -> list[dict]:
    data = dev.graphql(RUNS_QUERY, {"filter": {"tags": [DISCOVERY]}})["runsOrError"]
    assert data["__typename"] == "Runs", data
    return sorted(data["results"], key=lambda r: int(tags_of(r).get("dagster/tick", "0")))


def wait_run_success(dev: DagsterDev, run_id: str, timeout: float) -> dict:
    def done() -> dict | None:
        run = dev.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
        assert run["__typename"] == "Run", run
        assert run["status"] not in TERMINAL_FAILURES, f"run {run_id} ended {run['status']}"
        return run if run["status"] == "SUCCESS" else None

    return wait_for(done, timeout, f"run {run_id} to succeed")


def asset(dev: DagsterDev, stage: str) -> dict:
    node = dev.graphql(ASSET_QUERY, {"path": [WORKFLOW, stage]})["assetNodeOrError"]
    assert node["__typename"] == "AssetNode", node
    return node


def latest_metadata(node: dict) -> dict:
    (event,) = node["assetMaterializations"]
    return {
        e["label"]: e.get("intValue", e.get("floatValue", e.get("text", e.get("path"))))
        for e in event["metadataEntries"]
    }


def range_keys(partition_keys: list[str], run: dict) -> set[str]:
    """The partitions a range run covers: its start..end tags in the dynamic partitions' order."""
    tags = tags_of(run)
    start, end = partition_keys.index(tags[RANGE_START]), partition_keys.index(tags[RANGE_END])
    assert start <= end, (tags[RANGE_START], tags[RANGE_END])
    return set(partition_keys[start : end + 1])


def test_dagster_dev_end_to_end(tmp_path: Path) -> None:
    clock = Clock(TOTAL_TIMEOUT)
    photos, ws, workflow_file = tmp_path / "photos", tmp_path / "workspace", tmp_path / "e2e_workflow.py"
    first = [make_image(photos / f"big_{i}.jpg", *BIG, seed=i) for i in range(4)]
    first += [make_image(photos / f"small_{i}.jpg", *SMALL, seed=100 + i) for i in range(2)]
    first_keys = {sha256_file(p) for p in first}
    assert len(first_keys) == 6
    ws.mkdir()
    write_workflow(workflow_file, ws, photos)
    home = ensure_dagster_home(WorkspaceStore(ws))
    assert home == ws / "dagster_home"

    port = free_port()
    env = {
        "DAGSTER_HOME": str(home),
        "BEPREPARED_WORKFLOWS": str(workflow_file),
    }  # the discovery sensor at its default: 2 s ticks, scans on file-system events
    dev = DagsterDev("beprepared_dagster.definitions", port, env, tmp_path / "dagster_dev.log", cwd=tmp_path)
    try:
        with dev:
            # 3. The webserver answers and the code location loaded.
            def location() -> str | None:
                entries = dev.graphql(WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"]
                loaded = [e["locationOrLoadError"] for e in entries if e["locationOrLoadError"]]
                for entry in loaded:
                    assert entry["__typename"] == "RepositoryLocation", (
                        f"code location failed to load: {entry}"
                    )
                    assert [r["name"] for r in entry["repositories"]] == ["__repository__"]
                    return entry["name"]
                return None

            location_name = wait_for(location, clock.left(), "the webserver and code location")
            clock.mark("dagster dev up, code location loaded")

            # 4. The discovery sensor launches ONE run over the 6 images, and it succeeds.
            runs = wait_for(lambda: discovery_runs(dev), clock.left(), "the discovery sensor's first run")
            first_run = wait_run_success(dev, runs[0]["runId"], clock.left())
            clock.mark("sensor run 1 (6 images) succeeded")
            tags = tags_of(first_run)
            assert tags["dagster/sensor_name"] == SENSOR
            assert tags[RANGE_START] in first_keys and tags[RANGE_END] in first_keys

            # 5. Every partitioned stage has the 6 partitions materialized; FilterBySize kept 4, rejected 2.
            for stage in PARTITIONED:
                node = asset(dev, stage)
                assert node["isPartitioned"]
                stats = node["partitionStats"]
                assert (stats["numMaterialized"], stats["numPartitions"], stats["numFailed"]) == (6, 6, 0), (
                    stage,
                    stats,
                )
                assert set(node["assetPartitionStatuses"]["materializedPartitions"]) == first_keys, stage
                assert node["assetMaterializations"][0]["runId"] == first_run["runId"], stage
            filter_node = asset(dev, "filter_by_size")
            assert set(filter_node["partitionKeys"]) == first_keys
            assert range_keys(filter_node["partitionKeys"], first_run) == first_keys
            meta = latest_metadata(filter_node)
            assert (meta["images"], meta["kept"], meta["rejected"]) == (6, 4, 2), meta
            assert latest_metadata(asset(dev, "set_caption"))["kept"] == 4

            # 6. Save (unpartitioned) launched the way the UI's Materialize button does it.
            save_node = asset(dev, "save")
            assert not save_node["isPartitioned"]
            job = save_node["jobNames"][0]
            params = asset_job_params(location_name, [WORKFLOW, "save"], {"beprepared/test": "e2e-save"}, job)
            launched = dev.graphql(LAUNCH_MUTATION, {"executionParams": params})["launchPipelineExecution"]
            assert launched["__typename"] == "LaunchRunSuccess", launched
            wait_run_success(dev, launched["run"]["runId"], clock.left())
            clock.mark("Save run succeeded")
            output = ws / "output"
            names = sorted(p.name for p in output.iterdir() if not p.name.startswith("."))  # not the manifest
            images = [n for n in names if n.endswith(".png")]
            assert len(images) == 4, names
            for name in images:
                assert re.fullmatch(r"big_[0-3]\.jpg_[0-9a-f]{64}\.png", name), name
            captions = [output / n for n in names if n.endswith(".txt")]
            assert len(captions) == 4 and all("ohwx" in p.read_text() for p in captions), names
            assert len([n for n in names if n.endswith(".json")]) == 4, names
            assert "index.html" in names
            assert {Path(n).stem for n in images} == {Path(p).stem for p in captions}
            save_meta = latest_metadata(asset(dev, "save"))
            assert (save_meta["images"], save_meta["captions"]) == (4, 4), save_meta
            # Still exactly one discovery run: the sensor's later ticks skipped (nothing new).
            assert len(discovery_runs(dev)) == 1

            # 7. Two more images → a second sensor run over exactly those two partitions.
            clock.mark("checks of the first export")
            added = [make_image(photos / f"big_{i}.jpg", *BIG, seed=i) for i in (4, 5)]
            added_keys = {sha256_file(p) for p in added}
            assert len(added_keys) == 2 and not added_keys & first_keys
            runs = wait_for(
                lambda: (r := discovery_runs(dev)) and len(r) >= 2 and r,
                clock.left(),
                "the sensor's second run",
            )
            assert len(runs) == 2, [tags_of(r) for r in runs]
            second_run = wait_run_success(dev, runs[1]["runId"], clock.left())
            clock.mark("sensor run 2 (2 new images) succeeded")
            caption_node = asset(dev, "set_caption")
            assert range_keys(caption_node["partitionKeys"], second_run) == added_keys
            assert {tags_of(second_run)[RANGE_START], tags_of(second_run)[RANGE_END]} == added_keys
            stats = caption_node["partitionStats"]
            assert (stats["numMaterialized"], stats["numPartitions"]) == (8, 8), stats
            assert (
                set(caption_node["assetPartitionStatuses"]["materializedPartitions"])
                == first_keys | added_keys
            )
            assert latest_metadata(caption_node)["images"] == 2  # the second run touched only the new two
            assert len(discovery_runs(dev)) == 2
            # The same run exported them (Save follows a discovery run): files landed → in the export.
            exported = wait_for(
                lambda: (
                    (n := {p.name.rsplit("_", 1)[0] for p in output.glob("big_*.png")}) >= {"big_5.jpg"} and n
                ),
                clock.left(),
                "the new images in the export",
            )
            assert exported == {f"big_{i}.jpg" for i in range(6)}, exported
            clock.mark("2 new files: landed -> exported (file-system events)")
    finally:
        clock.mark("teardown")
        print(f"\ntimings:\n{clock.report()}", file=sys.stderr)

    # Nothing left behind: the process group is gone, no process refers to this workspace, the port is free.
    assert dev.proc is not None and dev.proc.returncode is not None
    assert processes_mentioning(str(ws)) == []
    assert port_is_free(port)
