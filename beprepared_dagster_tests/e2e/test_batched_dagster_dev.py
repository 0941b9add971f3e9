"""End to end: the batched event log under a real `dagster dev` (webserver, daemon, code server, run
workers), with no DAGSTER_EVENT_BATCH_SIZE in its environment: the storage configured in dagster.yaml must
turn batching on in every process that writes events.

One session drives, over GraphQL only: a backfill over the images known at start (the backfill daemon
creates its run), a sensor run over images the sensor adds (the sensor daemon), a run launched like the UI's
Materialize button (the webserver creates it) that fails, and the run-log websocket subscription the UI
uses. It checks what the UI shows (partition stats, per-partition
status, latest and per-partition materializations with metadata), that logs stream live, that the daemons
stay healthy, and which process stored which batch (a subclass of the storage records each bulk write).

Uses small synthetic assets rather than a workflow, so that only the storage is under test; the product's
own dagster.yaml under `dagster dev` is covered by test_dagster_dev.py. Does not measure speed.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance

from beprepared_dagster.orchestration.instance import EVENT_BATCH_SIZE_ENV, event_log_dir
from beprepared_dagster_tests.e2e.dagster_dev import (
    LAUNCH_MUTATION,
    RUNS_QUERY,
    WORKSPACE_QUERY,
    DagsterDev,
    asset_job_params,
    free_port,
    processes_mentioning,
    wait_for,
)

websockets_sync = pytest.importorskip("websockets.sync.client")

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

IMAGES = 300
PAUSE = 3.0  # `second` sleeps this long before returning: `first`'s events must reach the UI meanwhile
KEYS = [f"{i:064x}" for i in range(IMAGES)]
KNOWN, NEW = KEYS[: IMAGES // 2], KEYS[IMAGES // 2 :]  # known when dagster dev starts / added by the sensor
MODULE = "e2e_batched_defs"

DEFS = '''
import os
import time

import dagster as dg

from beprepared_dagster.orchestration.event_log import BatchedSqliteEventLogStorage

PARTS = dg.DynamicPartitionsDefinition(name="images")
KEYS = [f"{i:064x}" for i in range(int(os.environ["E2E_IMAGES"]))]
NEW = KEYS[len(KEYS) // 2 :]
RANGE = {"dagster/asset_partition_range_start": NEW[0], "dagster/asset_partition_range_end": NEW[-1]}


class SpyStorage(BatchedSqliteEventLogStorage):
    """The product storage, recording each bulk write: process, events, their type."""

    def _store_asset_records(self, conn, events, event_ids):
        with open(os.environ["E2E_SPY"], "a") as f:
            f.write(f"{os.getpid()} {len(events)} {events[0].get_dagster_event().event_type_value}\\n")
        return super()._store_asset_records(conn, events, event_ids)


def _body(name, fail=False, pause=0.0):
    def body(context) -> None:
        keys = context.partition_keys
        context.add_asset_metadata({"images": len(keys), "stage": name})
        context.add_asset_metadata({"first_key": keys[0]}, partition_key=keys[0])
        time.sleep(pause)
        if fail:
            raise RuntimeError(f"{name} fails on purpose")

    return body


def _asset(name, deps=(), **kwargs):
    policy = dg.BackfillPolicy.single_run()
    return dg.asset(name=name, partitions_def=PARTS, deps=list(deps), backfill_policy=policy)(_body(name, **kwargs))


first = _asset("first")
second = _asset("second", deps=[first], pause=float(os.environ["E2E_PAUSE"]))
broken = _asset("broken", deps=[first], fail=True)


@dg.sensor(target=[first, second], minimum_interval_seconds=1, default_status=dg.DefaultSensorStatus.RUNNING)
def discover(context):
    if context.instance.has_dynamic_partition("images", NEW[0]):
        return dg.SkipReason("already added")
    return dg.SensorResult(
        dynamic_partitions_requests=[PARTS.build_add_request(NEW)],
        run_requests=[dg.RunRequest(run_key="all", asset_selection=[first.key, second.key], tags=RANGE)],
    )


defs = dg.Definitions(assets=[first, second, broken], sensors=[discover], executor=dg.in_process_executor)
'''

DAGSTER_YAML = """\
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 1
event_log_storage:
  module: {module}
  class: SpyStorage
  config:
    base_dir: {base_dir}
"""

ASSET_STATUS = """
query Asset($path: [String!]!, $keys: [String!]) { assetNodeOrError(assetKey: {path: $path}) { __typename
  ... on AssetNode {
    partitionStats { numMaterialized numPartitions numFailed numMaterializing }
    assetPartitionStatuses { __typename
      ... on DefaultPartitionStatuses { materializedPartitions failedPartitions materializingPartitions } }
    latest: assetMaterializations(limit: 1) { runId partition metadataEntries { label
      ... on IntMetadataEntry { intValue } ... on TextMetadataEntry { text } } }
    some: assetMaterializations(partitions: $keys) { runId partition metadataEntries { label
      ... on IntMetadataEntry { intValue } ... on TextMetadataEntry { text } } } } } }
"""

BACKFILL_MUTATION = """
mutation Backfill($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message stack }
  ... on Error { message } } }
"""

BACKFILL_QUERY = """
query Backfill($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { status } ... on PythonError { message } } }
"""

SENSOR_TAG = {"key": "dagster/sensor_name", "value": "discover"}
DAEMONS_QUERY = "{ instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }"

LOGS_SUBSCRIPTION = """
subscription Logs($runId: ID!) { pipelineRunLogs(runId: $runId) { __typename
  ... on PipelineRunLogsSubscriptionSuccess { messages { __typename ... on MessageEvent { eventType stepKey } } }
  ... on PipelineRunLogsSubscriptionFailure { message } } }
"""


class LogStream(threading.Thread):
    """The UI's run-log subscription (graphql-ws over the websocket), noting when each event arrived."""

    def __init__(self, port: int, run_id: str) -> None:
        super().__init__(daemon=True)
        self.url, self.run_id = f"ws://127.0.0.1:{port}/graphql", run_id
        self.arrivals: list[tuple[float, str | None, str | None]] = []  # (time, eventType, stepKey)
        self.error: str | None = None

    def run(self) -> None:
        try:
            with websockets_sync.connect(self.url, subprotocols=["graphql-ws"], open_timeout=30) as ws:
                ws.send(json.dumps({"type": "connection_init", "payload": {}}))
                payload = {"query": LOGS_SUBSCRIPTION, "variables": {"runId": self.run_id}}
                ws.send(json.dumps({"id": "1", "type": "start", "payload": payload}))
                while not self.finished:
                    self._take(json.loads(ws.recv(timeout=120)))
        except Exception as exc:  # noqa: BLE001 (reported by the test)
            self.error = repr(exc)

    def _take(self, message: dict) -> None:
        if message.get("type") != "data":
            return
        logs = message["payload"]["data"]["pipelineRunLogs"]
        if logs["__typename"] != "PipelineRunLogsSubscriptionSuccess":
            raise AssertionError(f"subscription failed: {logs}")
        now = time.monotonic()
        self.arrivals += [(now, m.get("eventType"), m.get("stepKey")) for m in logs["messages"]]

    @property
    def finished(self) -> bool:
        return any(kind in ("RUN_SUCCESS", "RUN_FAILURE") for _, kind, _ in self.arrivals)

    def count(self, kind: str, step: str) -> int:
        return sum(1 for _, k, s in self.arrivals if k == kind and s == step)

    def last(self, kind: str, step: str | None = None) -> float:
        return max(t for t, k, s in self.arrivals if k == kind and (step is None or s == step))


@pytest.fixture
def dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(EVENT_BATCH_SIZE_ENV, raising=False)  # set by the storage, in each process
    (tmp_path / f"{MODULE}.py").write_text(DEFS)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML.format(module=MODULE, base_dir=event_log_dir(home)))
    env = {
        "DAGSTER_HOME": str(home),
        "PYTHONPATH": str(tmp_path),
        "E2E_SPY": str(tmp_path / "spy.log"),
        "E2E_IMAGES": str(IMAGES),
        "E2E_PAUSE": str(PAUSE),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(tmp_path))
    with DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("images", KNOWN)
    monkeypatch.delenv(EVENT_BATCH_SIZE_ENV, raising=False)  # that instance's storage set it here
    with DagsterDev(MODULE, free_port(), env, tmp_path / "dagster-dev.log", tmp_path) as server:
        yield server, tmp_path


def runs(server: DagsterDev, **filter_: object) -> list[dict]:
    return server.graphql(RUNS_QUERY, {"filter": filter_})["runsOrError"]["results"]


def finished(server: DagsterDev, run_id: str) -> str | None:
    status = runs(server, runIds=[run_id])[0]["status"]
    return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None


def asset(server: DagsterDev, name: str, keys: list[str]) -> dict:
    node = server.graphql(ASSET_STATUS, {"path": [name], "keys": keys})["assetNodeOrError"]
    assert node["__typename"] == "AssetNode", node
    return node


def metadata(event: dict) -> dict:
    return {e["label"]: e.get("intValue", e.get("text")) for e in event["metadataEntries"]}


def test_batched_event_log_under_dagster_dev(dev):
    server, tmp = dev
    wait_for(lambda: server.graphql(WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"], 60, "the code")
    # The backfill daemon wakes every ~30 s: launch first, so it overlaps the sensor's run.
    backfill = server.graphql(
        BACKFILL_MUTATION,
        {"params": {"assetSelection": [{"path": ["first"]}, {"path": ["second"]}], "partitionNames": KNOWN}},
    )["launchPartitionBackfill"]
    assert backfill["__typename"] == "LaunchBackfillSuccess", backfill
    sensor_run = wait_for(lambda: runs(server, tags=[SENSOR_TAG]), 90, "the sensor's run")[0]
    stream = LogStream(server.port, sensor_run["runId"])
    stream.start()
    assert wait_for(lambda: finished(server, sensor_run["runId"]), 90, "the sensor's run") == "SUCCESS"
    stream.join(60)
    assert stream.error is None and stream.finished, stream.error

    # Live streaming: `first`'s materializations reached the UI while `second` was still sleeping.
    for step in ("first", "second"):
        assert stream.count("ASSET_MATERIALIZATION_PLANNED", step) == 1  # one per asset, over all of NEW
        assert stream.count("ASSET_MATERIALIZATION", step) == len(NEW)
    assert stream.last("RUN_SUCCESS") - stream.last("ASSET_MATERIALIZATION", "first") > PAUSE * 0.6

    tags = {"dagster/asset_partition_range_start": KEYS[0], "dagster/asset_partition_range_end": KEYS[-1]}
    params = asset_job_params(MODULE, ["broken"], tags)
    launched = server.graphql(LAUNCH_MUTATION, {"executionParams": params})["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    assert wait_for(lambda: finished(server, launched["run"]["runId"]), 120, "the UI's run") == "FAILURE"

    def backfill_done() -> str | None:
        found = server.graphql(BACKFILL_QUERY, {"id": backfill["backfillId"]})["partitionBackfillOrError"]
        return found["status"] if found["status"] in ("COMPLETED", "COMPLETED_SUCCESS", "FAILED") else None

    assert wait_for(backfill_done, 120, "the backfill") in ("COMPLETED", "COMPLETED_SUCCESS")
    backfill_runs = runs(server, tags=[{"key": "dagster/backfill", "value": backfill["backfillId"]}])
    assert [r["status"] for r in backfill_runs] == ["SUCCESS"], "single-run backfill policy: one run"

    check_what_the_ui_shows(server, {KNOWN[0]: backfill_runs[0]["runId"], NEW[-1]: sensor_run["runId"]})
    check_daemons_and_log(server)
    check_who_wrote_batches(tmp / "spy.log")


def check_what_the_ui_shows(server: DagsterDev, run_of: dict[str, str]) -> None:
    """`run_of`: a sampled partition -> the run that materialized it."""
    sample = list(run_of)
    for name in ("first", "second"):
        node = asset(server, name, sample)
        assert node["partitionStats"] == {
            "numMaterialized": IMAGES,
            "numPartitions": IMAGES,
            "numFailed": 0,
            "numMaterializing": 0,
        }
        statuses = node["assetPartitionStatuses"]
        assert sorted(statuses["materializedPartitions"]) == KEYS and statuses["failedPartitions"] == []
        assert metadata(node["latest"][0])["stage"] == name
        assert {e["partition"]: e["runId"] for e in node["some"]} == run_of and len(node["some"]) == 2
        for event in node["some"]:
            meta = metadata(event)
            assert meta["stage"] == name and meta["images"] == len(NEW)
            assert meta.get("first_key") == (
                event["partition"] if event["partition"] in (KNOWN[0], NEW[0]) else None
            )
    broken = asset(server, "broken", sample)
    assert (
        broken["partitionStats"]["numFailed"] == IMAGES and broken["partitionStats"]["numMaterialized"] == 0
    )
    assert sorted(broken["assetPartitionStatuses"]["failedPartitions"]) == KEYS
    assert broken["latest"] == []


def check_daemons_and_log(server: DagsterDev) -> None:
    daemons = server.graphql(DAEMONS_QUERY)["instance"]["daemonHealth"]["allDaemonStatuses"]
    unhealthy = [d["daemonType"] for d in daemons if d["required"] and not d["healthy"]]
    assert not unhealthy, f"unhealthy daemons: {unhealthy}"
    log = server.log_tail(2_000_000)
    for bad in ("Falling back to storing multiple single-event", "database is locked"):
        assert bad not in log, f"{bad!r} in the dagster dev log"


def check_who_wrote_batches(spy: Path) -> None:
    """Planned events were written in bulk by the processes that create runs (daemon: sensor and backfill
    runs; webserver: the UI's run), materializations by each run's worker process."""
    writes = [line.split() for line in spy.read_text().splitlines()]
    by_type: dict[str, dict[int, int]] = {}
    for pid, count, kind in writes:
        by_type.setdefault(kind, {}).setdefault(int(pid), 0)
        by_type[kind][int(pid)] += int(count)
    daemon = {pid for pid, _ in processes_mentioning("dagster-daemon run")} | {
        pid for pid, _ in processes_mentioning("dagster._daemon")
    }
    webserver = {pid for pid, _ in processes_mentioning("dagster-webserver")} | {
        pid for pid, _ in processes_mentioning("dagster_webserver")
    }
    planned = by_type["ASSET_MATERIALIZATION_PLANNED"]
    assert sum(planned.values()) == 2 * IMAGES + IMAGES, planned  # two halves x 2 assets; broken: all
    assert set(planned) & daemon and set(planned) & webserver, (planned, daemon, webserver)
    assert set(planned) <= daemon | webserver
    materialized = by_type["ASSET_MATERIALIZATION"]
    assert sum(materialized.values()) == 2 * IMAGES and len(materialized) == 2, materialized
    assert not set(materialized) & (daemon | webserver), "materializations are written by run workers"
