"""What every stage run does around its work: hold the workspace's writer lock (store/lock.py), so a Dagster
run and a headless run never compute the same images at once, and report progress to the headless runner
when it is the one executing the stage in-process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from beprepared_dagster.store.lock import Holder, workspace_lock
from beprepared_dagster.store.workspace import WorkspaceStore

ProgressListener = Callable[[str, int, int], None]  # (stage, images done, total)

# Set by the headless runner while it executes runs in this process; Dagster's run workers have none.
_listener: ProgressListener | None = None


def waiting_message(store: WorkspaceStore, holder: Holder | None) -> str:
    """The line shown while another process holds the workspace."""
    who = holder.describe() if holder is not None else "another process"
    return f"workspace {store.root} is busy: {who} runs stages there; waiting for it to finish"


@contextmanager
def stage_session(store: WorkspaceStore, what: str, log: Any) -> Iterator[ProgressListener | None]:
    """Hold the workspace for one stage (waiting, with a log line naming the holder, while another process
    has it) and yield the headless runner's progress listener, if any."""
    with workspace_lock(store.root, what, on_wait=lambda h: log.info(waiting_message(store, h))):
        yield _listener


@contextmanager
def listening(listener: ProgressListener | None) -> Iterator[None]:
    """Send the progress of stages executed in this process, for the block, to `listener`."""
    global _listener
    previous, _listener = _listener, listener
    try:
        yield
    finally:
        _listener = previous
