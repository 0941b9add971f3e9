"""Helpers for end-to-end tests: run `dagster dev` as a process group and talk to it over GraphQL."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests

T = TypeVar("T")

TERMINAL_FAILURES = {"FAILURE", "CANCELED", "CANCELING"}

# --- GraphQL documents (field names checked against dagster_graphql 1.13's schema) -----------------------

WORKSPACE_QUERY = """
{ workspaceOrError { __typename
    ... on Workspace { locationEntries { name locationOrLoadError { __typename
        ... on RepositoryLocation { name repositories { name } }
        ... on PythonError { message stack } } } }
    ... on PythonError { message } } }
"""

RUNS_QUERY = """
query Runs($filter: RunsFilter) { runsOrError(filter: $filter) { __typename
    ... on Runs { results { runId status pipelineName tags { key value } } }
    ... on PythonError { message } } }
"""

RUN_QUERY = """
query Run($runId: ID!) { runOrError(runId: $runId) { __typename
    ... on Run { runId status tags { key value } }
    ... on PythonError { message } } }
"""

ASSET_QUERY = """
query Asset($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) { __typename
    ... on AssetNode {
        isPartitioned
        jobNames
        partitionKeys
        partitionStats { numMaterialized numPartitions numFailed numMaterializing }
        assetPartitionStatuses { __typename
            ... on DefaultPartitionStatuses { materializedPartitions failedPartitions } }
        assetMaterializations(limit: 1) { runId partition metadataEntries { __typename label
            ... on IntMetadataEntry { intValue }
            ... on FloatMetadataEntry { floatValue }
            ... on TextMetadataEntry { text }
            ... on PathMetadataEntry { path } } }
    }
    ... on AssetNotFoundError { message } } }
"""

# The mutation and executionParams shape the UI's "Materialize" button sends (LaunchAssetExecutionButton.tsx).
LAUNCH_MUTATION = """
mutation Launch($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) { __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message stack }
    ... on Error { message } } }
"""


# --- "Materialize all → All → Launch backfill", as the Dagster 1.13 UI sends it ------------------------------
# The UI first loads the selected assets (LaunchAssetExecutionButton.tsx, LaunchAssetLoaderQuery: the fields
# its choice of launch target reads), the partition keys of the first partitioned one (usePartitionHealthData),
# then sends LaunchPartitionBackfill (instance/backfill/BackfillUtils.tsx) with the params that
# LaunchAssetChoosePartitionsDialog.tsx builds.

GROUP_ASSETS_QUERY = """
query GroupAssets($group: AssetGroupSelector!) { assetNodes(group: $group) { assetKey { path } } }
"""

LAUNCH_ASSET_LOADER_QUERY = """
query LaunchAssetLoaderQuery($assetKeys: [AssetKeyInput!]!) {
  assetNodes(assetKeys: $assetKeys) {
    assetKey { path }
    jobNames
    isObservable
    isExecutable
    partitionDefinition { description type name dimensionTypes { name dynamicPartitionsDefinitionName } }
    backfillPolicy { maxPartitionsPerRun description policyType }
    dependencyKeys { path }
    repository { name location { name } } }
  assetNodeAdditionalRequiredKeys(assetKeys: $assetKeys) { path } }
"""

PARTITION_KEYS_QUERY = """
query PartitionKeys($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) { __typename
    ... on AssetNode { partitionKeysByDimension { name type partitionKeys } } } }
"""

LAUNCH_PARTITION_BACKFILL_MUTATION = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) { __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PartitionSetNotFoundError { message }
    ... on PartitionKeysNotFoundError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on UnauthorizedError { message }
    ... on PipelineNotFoundError { message }
    ... on RunConflict { message }
    ... on ConflictingExecutionParamsError { message }
    ... on PresetNotFoundError { message }
    ... on RunConfigValidationInvalid { pipelineName errors { message path reason } }
    ... on PythonError { message stack } } }
"""

BACKFILL_STATUS_QUERY = """
query Backfill($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
    ... on PartitionBackfill { status error { message } runs { runId status } }
    ... on PythonError { message } } }
"""

# Every materialization of an asset (newest first), with the metadata entries the tests read.
MATERIALIZATIONS_QUERY = """
query Materializations($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) { __typename
    ... on AssetNode { assetMaterializations { runId partition timestamp metadataEntries { __typename label
        ... on IntMetadataEntry { intValue }
        ... on TextMetadataEntry { text }
        ... on PathMetadataEntry { path } } } } } }
"""

TIMED_RUNS_QUERY = """
query Runs($filter: RunsFilter) { runsOrError(filter: $filter) { __typename
    ... on Runs { results { runId status creationTime endTime } }
    ... on PythonError { message } } }
"""

SENSOR_TICKS_QUERY = """
query Ticks($selector: SensorSelector!, $limit: Int) { sensorOrError(sensorSelector: $selector) { __typename
    ... on Sensor { sensorState { ticks(limit: $limit) { status timestamp skipReason runIds error { message } } } }
    ... on Error { message } } }
"""


def asset_job_params(location: str, path: list[str], tags: dict[str, str], job: str = "__ASSET_JOB") -> dict:
    return {
        "mode": "default",
        "runConfigData": "{}",
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        "selector": {
            "repositoryLocationName": location,
            "repositoryName": "__repository__",
            "pipelineName": job,
            "assetSelection": [{"path": path}],
            "assetCheckSelection": [],
        },
    }


# --- small utilities ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Nothing listens on the port and it can be bound again (TIME_WAIT leftovers allowed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5) -> T:
    """Poll `check` until it returns something truthy; AssertionError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except (requests.RequestException, ValueError) as exc:
            last_error = exc
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error!r})"
            )
        time.sleep(interval)


def processes_mentioning(text: str) -> list[tuple[int, str]]:
    """Live (non-zombie) processes whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append((int(entry.name), cmdline[:200]))
    return found


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- the process -------------------------------------------------------------------------------------------


def _default_sigint() -> None:
    # A process started from a non-interactive shell's background job inherits SIGINT as ignored; Dagster maps
    # SIGTERM to the SIGINT handler, so it would then ignore SIGTERM too. Give `dagster dev` the default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class DagsterDev:
    """`dagster dev -m <module>` in its own session (process group), logging to a file."""

    def __init__(self, module: str, port: int, env: dict[str, str], log_path: Path, cwd: Path) -> None:
        self.module, self.port, self.log_path, self.cwd = module, port, log_path, cwd
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.url = f"http://127.0.0.1:{port}/graphql"
        self.proc: subprocess.Popen | None = None
        self.session = requests.Session()

    def start(self) -> DagsterDev:
        cmd = [
            sys.executable,
            "-m",
            "dagster",
            "dev",
            "-m",
            self.module,
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
        ]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_sigint,
        )
        return self

    @property
    def pgid(self) -> int:
        assert self.proc is not None
        return self.proc.pid  # start_new_session: the leader's pid is the group id

    def log_tail(self, chars: int = 8000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError as exc:
            return f"<no log: {exc}>"

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"`dagster dev` exited early with code {self.proc.returncode}")

    def graphql(self, query: str, variables: dict[str, Any] | None = None, timeout: float = 30) -> dict:
        self.check_alive()
        response = self.session.post(
            self.url, json={"query": query, "variables": variables or {}}, timeout=timeout
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise AssertionError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def stop(self, grace: float = 30) -> None:
        """SIGTERM the whole group, wait, then SIGKILL whatever is left; leaves no process behind."""
        self.session.close()
        if self.proc is None:
            return
        pgid = self.pgid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=grace)
        # Children (webserver, daemon, code server, run workers) may outlive the leader: wait for them too.
        deadline = time.monotonic() + 10
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10  # killed orphans are reaped by init
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        self._log.close()

    def __enter__(self) -> DagsterDev:
        return self.start()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.stop()
        if exc_type is not None:
            print(
                f"\n----- tail of {self.log_path} -----\n{self.log_tail()}\n----- end of log -----",
                file=sys.stderr,
            )
