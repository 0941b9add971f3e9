"""One writer of work per workspace: a lock file (`<workspace>/beprepared.lock`) that a process holds while it
runs stages, so a second `python flow.py`, `beprepared run` or Dagster run on the same workspace waits for
the first and then finds its results cached, instead of computing them again.

The lock is `flock(2)` on the file: the kernel releases it when the holder exits, however it exits (a
killed process never leaves a stale lock behind). The file's text says who holds it (pid, command, since
when), for the message of whoever waits. Within one process the lock is re-entrant: the headless runner
holds it for a whole round of runs, and each stage it executes in-process takes it again.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

LOCK_NAME = "beprepared.lock"

_guard = threading.Lock()
_held: dict[str, list[int]] = {}  # lock path → [fd, depth], for this process


@dataclass(frozen=True)
class Holder:
    """Who holds a workspace's lock, as its file says (fields are empty when it could not be read)."""

    pid: int | None
    command: str
    since: str

    def describe(self) -> str:
        """E.g. `pid 4242 (python flow.py, since 12:03:04)`."""
        who = f"pid {self.pid}" if self.pid else "another process"
        detail = ", ".join(x for x in (self.command, f"since {self.since}" if self.since else "") if x)
        return f"{who} ({detail})" if detail else who


def lock_path(root: str | os.PathLike) -> Path:
    return Path(root) / LOCK_NAME


def current_command() -> str:
    """This process's command line, shortened: what another process is told it waits for."""
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if not program or program.endswith(".py") or program == "-c":
        program = f"python {program}".strip()
    text = " ".join([program, *sys.argv[1:]])
    return text if len(text) <= 120 else text[:117] + "..."


def read_holder(root: str | os.PathLike) -> Holder | None:
    """The holder the lock file names, or None when it names none (free, or never taken)."""
    try:
        text = lock_path(root).read_text(encoding="utf-8")
    except OSError:
        return None
    if not text.strip():
        return None
    try:
        data = json.loads(text)
        return Holder(int(data["pid"]), str(data.get("command", "")), str(data.get("since", "")))
    except (ValueError, KeyError, TypeError):
        return Holder(None, "", "")


@contextmanager
def workspace_lock(
    root: str | os.PathLike,
    what: str | None = None,
    on_wait: Callable[[Holder | None], None] | None = None,
) -> Iterator[None]:
    """Hold the workspace's writer lock for the block, waiting as long as another process holds it.

    Args:
        root: the workspace folder (created if missing).
        what: what this process does, written into the lock file for others to read.
        on_wait: called once, with the holder, when the lock is taken and this process has to wait.
    """
    path = str(lock_path(root))
    with _guard:
        entry = _held.get(path)
        if entry is not None:
            entry[1] += 1
    if entry is None:
        fd = _acquire(Path(path), what or current_command(), on_wait)
        with _guard:
            _held[path] = [fd, 1]
    try:
        yield
    finally:
        with _guard:
            entry = _held[path]
            entry[1] -= 1
            last = entry[1] == 0
            if last:
                del _held[path]
        if last:
            _release(entry[0])


def _acquire(path: Path, what: str, on_wait: Callable[[Holder | None], None] | None) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(read_holder(path.parent))
            fcntl.flock(fd, fcntl.LOCK_EX)  # Ctrl-C interrupts the wait
        record = {"pid": os.getpid(), "command": what, "since": time.strftime("%H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _release(fd: int) -> None:
    try:
        os.ftruncate(fd, 0)  # free: nobody is named any more
    finally:
        os.close(fd)  # closing the only descriptor releases the flock
