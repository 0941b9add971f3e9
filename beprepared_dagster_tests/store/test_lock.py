"""The workspace's writer lock with real processes: a second process waits (told who holds it), a holder
killed with SIGKILL leaves nothing that blocks, and the lock is re-entrant within a process.

Not covered here: runs waiting for each other (orchestration/test_runner_processes.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from beprepared_dagster.store.lock import lock_path, read_holder, workspace_lock

HOLD = textwrap.dedent(
    """
    import sys, time
    from beprepared_dagster.store.lock import workspace_lock
    with workspace_lock(sys.argv[1], "holder script"):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def hold(root: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the lock for `seconds`; returns once it holds it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(root), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_process_waits_for_the_holder_and_is_told_who(tmp_path):
    holder = hold(tmp_path, 1.5)
    told = []
    started = time.monotonic()
    with workspace_lock(tmp_path, "second", on_wait=told.append):
        waited = time.monotonic() - started
        assert read_holder(tmp_path).command == "second"
    assert holder.wait(timeout=10) == 0
    assert waited >= 1.0
    assert len(told) == 1 and told[0].pid == holder.pid and told[0].command == "holder script"
    assert f"pid {holder.pid} (holder script, since " in told[0].describe()
    assert read_holder(tmp_path) is None  # released: the file names nobody


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    holder = hold(tmp_path, 60)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    assert read_holder(tmp_path).pid == holder.pid  # its record is still there…
    told = []
    started = time.monotonic()
    with workspace_lock(tmp_path, "next", on_wait=told.append):
        assert time.monotonic() - started < 1.0 and told == []  # …but the kernel released its flock
        assert read_holder(tmp_path).command == "next"


def test_reentrant_within_a_process_and_released_by_the_outermost_block(tmp_path):
    with workspace_lock(tmp_path, "outer"):
        with workspace_lock(tmp_path, "inner", on_wait=lambda h: (_ for _ in ()).throw(AssertionError)):
            assert read_holder(tmp_path).command == "outer"
        assert read_holder(tmp_path).command == "outer"
        probe = subprocess.run(
            [sys.executable, "-c", _TRY, str(tmp_path)], capture_output=True, text=True, timeout=30
        )
        assert probe.stdout.strip() == "busy"
    assert read_holder(tmp_path) is None and lock_path(tmp_path).is_file()
    free = subprocess.run([sys.executable, "-c", _TRY, str(tmp_path)], capture_output=True, text=True)
    assert free.stdout.strip() == "free"


_TRY = textwrap.dedent(
    """
    import fcntl, os, sys
    from beprepared_dagster.store.lock import lock_path
    fd = os.open(lock_path(sys.argv[1]), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print("free")
    except BlockingIOError:
        print("busy")
    """
)
