"""The workspace's Dagster instance: DAGSTER_HOME inside the workspace, with a dagster.yaml written for the
user (one run at a time, telemetry off, the batched event log, run and schedule storages that skip
Dagster's migration scripts once set up). Without a persisted DAGSTER_HOME,
`dagster dev` deletes its history, and the materialization history is half of the cache.

The dagster.yaml is ours until the user edits it: a file that still reads exactly as some version of this
package wrote it is brought up to date (its history files stay where they are); an edited one is left
alone, with a log line saying how to get the batched event log.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from beprepared_dagster.store.workspace import WorkspaceStore

log = logging.getLogger("beprepared")

# Read by Dagster at every event (dagster/_core/instance/methods/event_methods.py); 0 or unset = no batching.
EVENT_BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
DEFAULT_EVENT_BATCH_SIZE = 1000
STORAGE_MODULE = "beprepared_dagster.orchestration.event_log"
STORAGE_CLASS = "BatchedSqliteEventLogStorage"

_COMMON = """\
telemetry:
  enabled: false
# Stages write the workspace's DuckDB file, which takes one writer at a time: keep runs sequential.
concurrency:
  runs:
    max_concurrent_runs: 1
"""

# A queued run starts within a second instead of up to five (Dagster's default dequeue interval): new files
# reach the export sooner, and a label run follows a click sooner.
RUN_COORDINATOR_BLOCK = """\
run_coordinator:
  module: dagster._core.run_coordinator.queued_run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
"""

EVENT_LOG_BLOCK = f"""\
# Dagster's own SQLite event log (same files under history/), storing each batch of asset events in one
# transaction: under 1 ms instead of ~15-20 ms of bookkeeping per (stage, image). It also sets
# DAGSTER_EVENT_BATCH_SIZE={DEFAULT_EVENT_BATCH_SIZE} in each Dagster process that opens this instance, unless
# that variable is already set. README, "Scale: Dagster bookkeeping and PostgreSQL".
event_log_storage:
  module: {STORAGE_MODULE}
  class: {STORAGE_CLASS}
  config:
    base_dir: {{event_log_dir}}
"""

# Dagster's own SQLite run and schedule storages in their default folders, opened without loading Dagster's
# ~90 migration scripts when the database is already set up (~0.05 s each per process).
SQLITE_STORAGE_MODULE = "beprepared_dagster.orchestration.sqlite_storage"
RUN_SCHEDULE_BLOCK = f"""\
# Dagster's SQLite run and schedule storages (same files), opened without re-reading Dagster's migration
# scripts once a database is set up.
run_storage:
  module: {SQLITE_STORAGE_MODULE}
  class: StampedSqliteRunStorage
  config:
    base_dir: {{runs_dir}}
schedule_storage:
  module: {SQLITE_STORAGE_MODULE}
  class: StampedSqliteScheduleStorage
  config:
    base_dir: {{schedules_dir}}
"""

_HEADER = (
    "# Written by beprepared-dagster, and updated by it while unmodified; once you edit it, it is yours.\n"
)
DAGSTER_YAML = _HEADER + _COMMON + RUN_COORDINATOR_BLOCK + EVENT_LOG_BLOCK + RUN_SCHEDULE_BLOCK

# Every text an earlier version wrote, verbatim: such a file is unmodified and gets the current one.
PREVIOUS_DAGSTER_YAMLS = ("# Written by beprepared-dagster; edit freely, it is not overwritten.\n" + _COMMON,)
# Earlier templates that carry the storages' folders (matched for any folder, like the current one).
PREVIOUS_TEMPLATES = (
    _HEADER + _COMMON + EVENT_LOG_BLOCK,
    _HEADER + _COMMON + RUN_COORDINATOR_BLOCK + EVENT_LOG_BLOCK,
)
_PLACEHOLDERS = ("{event_log_dir}", "{runs_dir}", "{schedules_dir}")


def event_log_dir(home: Path) -> str:
    """Where Dagster's default SQLite storage keeps run shards and index.db (`history/runs/`)."""
    return os.path.join(str(home), "history", "runs", "")


def render_dagster_yaml(home: Path) -> str:
    """The dagster.yaml for `home`: Dagster's default folders (run shards and index, runs.db, schedules.db)."""
    folders = {
        "{event_log_dir}": event_log_dir(home),
        "{runs_dir}": os.path.join(str(home), "history", ""),
        "{schedules_dir}": os.path.join(str(home), "schedules"),
    }
    text = DAGSTER_YAML
    for placeholder, folder in folders.items():
        text = text.replace(placeholder, folder)
    return text


def ensure_dagster_home(store: WorkspaceStore) -> Path:
    """Create the workspace's DAGSTER_HOME and its dagster.yaml, or bring an unmodified one up to date."""
    home = store.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    wanted = render_dagster_yaml(home)
    current = config.read_text() if config.exists() else None
    if current == wanted:
        return home
    if current is None or _written_by_us(current):
        _write_atomically(config, wanted)
        if current is not None:
            log.info(f"updated {config} (unmodified): this version's settings, this workspace's folders")
    elif STORAGE_CLASS not in current and not _configures_storage(current):
        log.info(
            f"{config} was edited, so it is left as it is; Dagster's bookkeeping costs ~15-20 ms per "
            f"(stage, image) without the batched event log. To enable it, add:\n"
            + EVENT_LOG_BLOCK.replace("{event_log_dir}", event_log_dir(home))
        )
    return home


def apply_event_batching_env() -> None:
    """Set DAGSTER_EVENT_BATCH_SIZE in this process unless the user chose a value (0 turns batching off).

    The batched storage sets it too when built; this also covers a dagster.yaml edited to another storage
    (dagster-postgres bulk-inserts a batch of materializations)."""
    os.environ.setdefault(EVENT_BATCH_SIZE_ENV, str(DEFAULT_EVENT_BATCH_SIZE))


def open_instance(store: WorkspaceStore):  # -> dagster.DagsterInstance
    """The workspace's persistent Dagster instance, with event batching on in this process."""
    import dagster as dg

    apply_event_batching_env()
    return dg.DagsterInstance.from_config(str(ensure_dagster_home(store)))


def _written_by_us(text: str) -> bool:
    if text in PREVIOUS_DAGSTER_YAMLS:
        return True
    # The current template and earlier ones, for any home path (a workspace folder that was moved or copied).
    for template in (DAGSTER_YAML, *PREVIOUS_TEMPLATES):
        pattern = re.escape(template)
        for placeholder in _PLACEHOLDERS:
            pattern = pattern.replace(re.escape(placeholder), r"[^\n]+")
        if re.fullmatch(pattern, text) is not None:
            return True
    return False


def _configures_storage(text: str) -> bool:
    import yaml

    try:
        value = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return True  # not ours to judge; Dagster will report it
    return isinstance(value, dict) and any(
        k in value for k in ("storage", "event_log_storage", "instance_class")
    )


def _write_atomically(path: Path, text: str) -> None:
    # `dagster dev` processes may be reading it: never let them see a half-written file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
