"""The warm runner itself (see `orchestration.warm`): `python -m beprepared_dagster.orchestration.warm_server
FOLDER KEY IDLE_SECONDS`, started by `warm.start_runner` in a session of its own.

It takes `FOLDER/KEY.lock` (a second runner for the same key exits at once), imports what a headless run
imports, sets it aside from the garbage collector (`gc.freeze`: the forked children then share those pages
and never walk them), and listens on `FOLDER/KEY.sock` (bound under a temporary name and renamed, so a
client never connects to a runner still importing). One thread, no other thread ever started, so forking is
safe: each accepted command is checked (same user id), forked, and the child becomes the command; the
runner reports the child's pid at once and its exit status when it ends, and passes a SIGINT on to a
child whose client went away (its terminal closed, or it was killed). It leaves after IDLE_SECONDS
without a command and no child running, when asked to stop, or when its socket file is gone or replaced.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import gc
import io
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from beprepared_dagster.orchestration import warm

# What `beprepared run` imports before and while it runs a workflow; a child imports the rest itself.
PRELOAD = (
    "dagster",
    "dagster._core.storage.base_storage",
    "dagster._core.storage.runs",
    "dagster._core.storage.schedules",
    "dagster._core.storage.event_log",
    "beprepared_dagster.cli",
    "beprepared_dagster.orchestration.loader",
    "beprepared_dagster.orchestration.runner",
    "beprepared_dagster.orchestration.inprocess",
    "beprepared_dagster.orchestration.event_log",
    "beprepared_dagster.orchestration.sqlite_storage",
    "beprepared_dagster.orchestration.stage_load",
    "beprepared_dagster.export.dataset",
    "beprepared_dagster.store.embeddings",
    "dagster._core.instance.factory",
    "dagster._core.instance.runs.run_domain",
    "dagster._core.secrets.env_file",
    "dagster._core.storage.legacy_storage",
    "dagster._core.storage.noop_compute_log_manager",
    "dagster._core.storage.root",
    "dagster._core.execution.execute_in_process",
    "dagster._core.executor.in_process",
    "dagster._core.definitions.external_asset",
    "dagster._core.definitions.repository_definition.repository_data_builder",
    "dagster._core.execution.plan.active",
    "dagster._core.system_config.composite_descent",
    "dagster._core.types.transform_typing",
    "upath",
    "upath.implementations.local",
    "fsspec.implementations.local",
    "duckdb",
    "PIL.Image",
    "PIL.ImageDraw",
    "PIL.ImageFont",
    "beprepared_dagster.export.jsontext",
)


def main(argv: list[str]) -> int:
    folder, key, idle = Path(argv[0]), argv[1], float(argv[2])
    lock = os.open(folder / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another runner for this key is starting or serving
    path = os.environ.pop(warm.PATH_ENV, None)
    if path:
        sys.path[:] = json.loads(path)
    import importlib

    for name in PRELOAD:
        _try(importlib.import_module, name)
    _preload_nodes()
    threads = _threads()
    if threads != 1:  # forking would copy locks held by threads it does not copy (native ones included)
        print(f"warm runner: {threads} threads after the imports; not serving", flush=True)
        return 1
    gc.collect()
    gc.freeze()
    return Runner(folder, key, idle, lock).serve()


def _threads() -> int:
    """This process's threads, native ones included (a library's thread pool is no Python thread)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _preload_nodes() -> None:
    """Every node class (`from beprepared_dagster import *` in a workflow file imports them all) and
    Pillow's image plugins (the first image opened loads them)."""
    from PIL import Image

    import beprepared_dagster

    for name in beprepared_dagster.__all__:
        _try(getattr, beprepared_dagster, name)
    Image.init()


def _try(load: Any, *args: Any) -> None:
    """Import something ahead; a failure is the command's to report (it imports it again), not the runner's."""
    try:
        load(*args)
    except Exception:
        traceback.print_exc()


class Runner:
    def __init__(self, folder: Path, key: str, idle: float, lock: int) -> None:
        self.folder, self.key, self.idle, self.lock = folder, key, idle, lock
        self.path = warm.socket_path(folder, key)
        self.children: dict[int, socket.socket | None] = {}  # pid → its client (None once gone)
        self.served = 0
        self.started = time.time()
        self.last = time.monotonic()
        self.stopping = False
        self.replaced = False  # another runner took the socket's name

    def serve(self) -> int:
        staging = self.folder / f"{self.key}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(staging))
        self.listener.listen(16)
        os.replace(staging, self.path)  # clients connect from here on
        self.inode = os.stat(self.path).st_ino
        self.wake_r, self.wake_w = os.pipe()
        for fd in (self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select through the pipe
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        print(f"warm runner {os.getpid()} serving {self.path}", flush=True)
        try:
            while self._loop_once():
                pass
        except BaseException:
            self._leave(keep_log=True)  # the traceback goes there
            raise
        self._leave(keep_log=False)
        return 0

    def _on_term(self, *_: Any) -> None:
        self.stopping = True

    def _loop_once(self) -> bool:
        self._reap()
        if not self.children and (self.stopping or time.monotonic() - self.last > self.idle or self._gone()):
            return False
        if self.stopping:  # no new commands: the next client finds no runner and runs in its own process
            self._release_socket()
        watched: list[Any] = [self.wake_r] + [c for c in self.children.values() if c is not None]
        if not self.stopping:
            watched.append(self.listener)
        try:
            ready, _, _ = select.select(watched, [], [], 1.0)
        except InterruptedError:
            return True
        for item in ready:
            if item is self.wake_r:
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wake_r, 4096)
            elif item is self.listener:
                self._accept()
            else:
                self._client_readable(item)
        return True

    def _gone(self) -> bool:
        try:
            return os.stat(self.path).st_ino != self.inode
        except OSError:
            return True

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        try:
            conn.settimeout(10)
            _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            if uid != os.getuid():
                conn.close()
                return
            request, fds = warm.receive_request(conn)
        except (OSError, ValueError):
            conn.close()
            return
        if request.get("status") or request.get("stop"):  # not a command: the idle time goes on
            self.stopping = self.stopping or bool(request.get("stop"))
            with contextlib.suppress(OSError):
                warm.send_reply(conn, self._status())
            _refuse(conn, fds)
            return
        if len(fds) != 3 or not isinstance(request.get("argv"), list):
            _refuse(conn, fds)
            return
        if _threads() != 1:  # something started a thread since: run the command in the caller's process
            self.stopping = True
            _refuse(conn, fds)
            return
        pid = os.fork()
        if pid == 0:
            self._become(conn, request, fds)  # never returns
        for fd in fds:
            os.close(fd)
        self.served += 1
        self.last = time.monotonic()
        try:
            warm.send_reply(conn, {"pid": pid})
            conn.setblocking(False)
            self.children[pid] = conn
        except OSError:  # the client left already: the command stops as after a Ctrl-C
            conn.close()
            self.children[pid] = None
            _interrupt(pid)

    def _client_readable(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            return  # clients send nothing after the request
        for pid, client in self.children.items():
            if client is conn:
                self.children[pid] = None
                _interrupt(pid)
        conn.close()

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            self.last = time.monotonic()
            if conn is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            with contextlib.suppress(OSError):
                conn.setblocking(True)
                warm.send_reply(conn, {"signal": -code} if code < 0 else {"exit": code})
            conn.close()

    def _status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "key": self.key,
            "python": sys.executable,
            "served": self.served,
            "running": len(self.children),
            "started": self.started,
            "idle_seconds": self.idle,
        }

    def _release_socket(self) -> None:
        """Stop listening, and remove the socket file unless another runner has replaced it."""
        if self.listener.fileno() < 0:
            return
        self.replaced = self._gone()
        if not self.replaced:
            with contextlib.suppress(OSError):
                self.path.unlink()
        self.listener.close()

    def _leave(self, keep_log: bool) -> None:
        """Remove the socket, the lock file and, after a clean end, the log: a runner's key changes with every
        upgrade, and old keys' files would pile up (those of a runner that replaced this one stay)."""
        self._release_socket()
        if not self.replaced:
            for suffix in (".lock",) if keep_log else (".log", ".lock"):
                with contextlib.suppress(OSError):
                    (self.folder / f"{self.key}{suffix}").unlink()

    def _become(self, conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        """In the forked child: take the client's terminal, folder, environment and umask, run the command,
        and exit with its status (exit handlers run first, as at a normal end)."""
        code: Any = 1
        try:
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            for other in [self.listener, conn, *(c for c in self.children.values() if c is not None)]:
                other.close()
            for fd in (self.wake_r, self.wake_w, self.lock):
                os.close(fd)
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                if fd > 2:
                    os.close(fd)
            os.chdir(request["cwd"])
            os.umask(int(request.get("umask", 0o022)))
            os.environ.clear()
            os.environ.update({str(k): str(v) for k, v in request.get("env", {}).items()})
            sys.path[:] = [str(p) for p in request.get("path", sys.path)]
            sys.argv = [str(a) for a in request["argv"]]
            _take_streams()
            from beprepared_dagster.cli import main

            code = main(sys.argv[1:])
        except SystemExit as exc:
            code = exc.code
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(_finish(code))


def _finish(code: Any) -> int:
    """What `sys.exit(code)` would do at the end of a normal interpreter: exit handlers, flushed streams."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code & 0xFF
    else:
        print(code, file=sys.stderr)
        status = 1
    with contextlib.suppress(BaseException):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    return status


def _take_streams() -> None:
    """New `sys.stdin/stdout/stderr` over descriptors 0-2 (now the client's), buffered as Python buffers a
    fresh process's: stdout line by line on a terminal, stderr always."""
    encoding = sys.__stdout__.encoding if sys.__stdout__ else "utf-8"

    def stream(fd: int, mode: str, errors: str) -> io.TextIOWrapper:
        tty = os.isatty(fd)
        raw = io.FileIO(fd, mode, closefd=False)
        buffered: Any = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
        return io.TextIOWrapper(
            buffered, encoding=encoding, errors=errors, line_buffering=(fd == 2 or tty) and mode == "w"
        )

    sys.stdin = sys.__stdin__ = stream(0, "r", "strict")
    sys.stdout = sys.__stdout__ = stream(1, "w", "strict")
    sys.stderr = sys.__stderr__ = stream(2, "w", "backslashreplace")


def _refuse(conn: socket.socket, fds: list[int]) -> None:
    """End a connection without running a command: the client runs it in its own process, if any."""
    for fd in fds:
        os.close(fd)
    conn.close()


def _interrupt(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
