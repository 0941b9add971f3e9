"""One Dagster run executed in this process, for the headless runner: what `dagster.materialize` does, with
a console logger that speaks through Python logging (so its lines do not tear the progress bar) and an
instance that does not capture compute logs.

Without compute-log capture Dagster starts no `tail -F` / `watch_orphans` helper processes per run: on a
terminal they share our process group, so a Ctrl-C reached them too and each printed a KeyboardInterrupt
traceback. A headless run's stdout and stderr are the terminal's anyway; its structured log stays in the
run's event log, which `dagster dev` shows.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg

from beprepared_dagster.orchestration.instance import apply_event_batching_env, ensure_dagster_home
from beprepared_dagster.store.workspace import WorkspaceStore

JOB_NAME = "__ephemeral_asset_job__"  # the name dg.materialize gives its runs
INTERRUPTED = ("DagsterExecutionInterruptedError", "KeyboardInterrupt")
_NO_COMPUTE_LOGS = {
    "compute_logs": {
        "module": "dagster._core.storage.noop_compute_log_manager",
        "class": "NoOpComputeLogManager",
    }
}

log = logging.getLogger("beprepared.dagster")


def headless_instance(store: WorkspaceStore) -> dg.DagsterInstance:
    """The workspace's persistent instance (its dagster.yaml, its history), without compute-log capture."""
    from dagster._core.instance.ref import InstanceRef

    apply_event_batching_env()
    home = str(ensure_dagster_home(store))
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(home, overrides=_NO_COMPUTE_LOGS))


class _RunLogFilter(logging.Filter):
    """Drops what the runner reports itself: an interrupted step (one "stopped" line), and unless
    `failures` is set, Dagster's step and run failure events (the runner names the root cause)."""

    def __init__(self, failures: bool) -> None:
        super().__init__()
        self.failures = failures

    def filter(self, record: logging.LogRecord) -> bool:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        if event is None:
            return True
        if event.is_step_failure or event.is_run_failure:
            error = getattr(event.event_specific_data, "error", None)
            return self.failures and not _is_interrupt(error)
        return True


class _Formatter(logging.Formatter):
    """A node's own lines as it wrote them ("convert_format: 40/100 image(s)…"); Dagster's events with
    their step and event type."""

    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", None)
        if not meta or meta.get("dagster_event") is None:
            return str(meta["orig_message"]) if meta else super().format(record)
        return record.getMessage()


@dg.logger(
    {"log_level": dg.Field(str, default_value="INFO"), "failures": dg.Field(bool, default_value=False)},
    description="beprepared's console logger: Python logging under `beprepared.dagster`.",
)
def console_logger(init_context: Any) -> logging.Logger:
    config = init_context.logger_config
    # A fresh logger per run, not registered with logging's manager: its records go to our handler only.
    logger = logging.Logger("beprepared.dagster", level=config["log_level"].upper())
    handler = _Forward()
    handler.addFilter(_RunLogFilter(config["failures"]))
    handler.setFormatter(_Formatter())
    logger.addHandler(handler)
    return logger


class _Forward(logging.Handler):
    """Hands each formatted line to the `beprepared.dagster` logger, whose handlers the caller chose (the
    console with its progress bar, or none)."""

    def emit(self, record: logging.LogRecord) -> None:
        log.log(record.levelno, self.format(record))


def execute(
    assets: list, selection: list, instance: dg.DagsterInstance, tags: dict, log_level: str, failures: bool
) -> dg.ExecuteInProcessResult:
    """Materialize `selection` in this process, as `dg.materialize` would. Raises KeyboardInterrupt when
    a Ctrl-C came during the run, even one Dagster swallowed after the last step."""
    defs = dg.Definitions(
        jobs=[dg.define_asset_job(JOB_NAME, selection=selection)],
        assets=assets,
        loggers={"console": console_logger},
    )
    job = defs.resolve_job_def(JOB_NAME)
    run_config = {"loggers": {"console": {"config": {"log_level": log_level, "failures": failures}}}}
    with _sigint_seen() as seen:
        result = job.execute_in_process(
            run_config=run_config, instance=instance, tags=tags, raise_on_error=False
        )
        stopped = seen()
    if stopped or interrupted(result):
        raise KeyboardInterrupt
    return result


@contextmanager
def _sigint_seen() -> Iterator[Callable[[], bool]]:
    """Dagster defers a SIGINT to its next checkpoint and forgets it when the run ends first; the signal's
    wakeup file descriptor still records it (it is written whatever Python handler is installed)."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    try:
        yield lambda: _drained(read)
    finally:
        signal.set_wakeup_fd(previous)
        os.close(read)
        os.close(write)


def _drained(fd: int) -> bool:
    seen = False
    while True:
        try:
            data = os.read(fd, 512)
        except BlockingIOError:
            return seen
        if not data:
            return seen
        seen = seen or signal.SIGINT in data


def interrupted(result: dg.ExecuteInProcessResult) -> bool:
    """Whether the run ended because of a Ctrl-C (SIGINT) rather than a failure."""
    return any(
        (event.is_step_failure or event.is_run_failure)
        and _is_interrupt(getattr(event.event_specific_data, "error", None))
        for event in result.all_events
    )


def _is_interrupt(error: Any) -> bool:
    while error is not None:
        if error.cls_name in INTERRUPTED:
            return True
        error = error.cause
    return False


def root_cause(error: Any) -> str:
    """The first error under Dagster's wrappers: "Failure: …" or "ZeroDivisionError: …", not "Error occurred
    while executing op…"."""
    while error is not None and error.cls_name.startswith("Dagster") and error.cause is not None:
        error = error.cause
    return (
        (error.message if error is not None else "").replace("dagster._core.definitions.events.", "").strip()
    )
