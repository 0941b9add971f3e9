"""The warm runner of `beprepared run` and `beprepared exec`: the command's client side.

A headless re-run spends most of its time importing Dagster and its storage modules (~1,400 modules, 1-2 s
on a small machine), whatever the work. After a `beprepared run` has done its work in its own process, it
starts a *warm runner* in the background (`orchestration.warm_server`): a process of this interpreter with
those modules imported, waiting on a Unix socket. The next `beprepared run` or `exec` (same interpreter,
same packages, same environment) hands its command line to it, with its terminal (stdin, stdout and stderr,
passed as file descriptors), working folder, environment and umask: the runner forks, and the child runs
the command exactly as this process would have, printing on this terminal, while this process waits,
passes on Ctrl-C (and SIGTERM, SIGHUP, SIGQUIT; Ctrl-Z stops both, `fg` resumes both) and exits with the
child's status. Nothing of one command
stays for the next: every command gets a fresh fork of the imported, idle runner.

A runner serves only commands that would import the same code: its socket is named after a digest of the
interpreter, `sys.path` (and the mtime of each folder on it: installing or removing a package changes it),
this package's files (size and mtime) and the environment variables read at import time (`PYTHON*`,
`DAGSTER_*`, `BEPREPARED_*`, locale). Anything else finds no runner and runs here, then starts one. A
runner exits after `BEPREPARED_WARM_IDLE` seconds without a command (default 900) and at
`beprepared warm stop`.

The socket lives in a folder only this user can enter (`$XDG_RUNTIME_DIR/beprepared-warm`, else
`/tmp/beprepared-warm-<uid>`, or `BEPREPARED_WARM_DIR`), created 0700 and refused when it is not this
user's or others can enter it; the runner also checks the connecting process's user id. Linux only (it
needs fork, SCM_RIGHTS and SO_PEERCRED); `BEPREPARED_WARM=0` turns it off. `python flow.py` does not use
it: a script's code before `run()` has already run in its own process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import stat
import struct
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WARM_ENV = "BEPREPARED_WARM"  # 0 / false / no / off: no warm runner
WARM_DIR_ENV = "BEPREPARED_WARM_DIR"
IDLE_ENV = "BEPREPARED_WARM_IDLE"
PATH_ENV = "BEPREPARED_WARM_SYS_PATH"  # the client's sys.path, for the runner it starts
DEFAULT_IDLE = 900.0
RETRY_AFTER = 600.0  # seconds before starting a runner again for a key whose last one failed
MAX_REQUEST = 4 << 20
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
_OFF = ("0", "false", "no", "off")
# Environment read when modules are imported (the runner imported them with its own): part of the key.
_KEY_ENV = ("PYTHON", "DAGSTER_", "BEPREPARED_", "LANG", "LC_")
_NOT_KEY_ENV = ("BEPREPARED_WORKSPACE", WARM_ENV, WARM_DIR_ENV, IDLE_ENV, PATH_ENV)


def enabled() -> bool:
    """Whether `beprepared run`/`exec` may use (and start) a warm runner here."""
    if os.environ.get(WARM_ENV, "").strip().lower() in _OFF:
        return False
    return sys.platform.startswith("linux") and hasattr(os, "fork") and hasattr(socket, "SO_PEERCRED")


def idle_seconds() -> float:
    try:
        return max(1.0, float(os.environ.get(IDLE_ENV, DEFAULT_IDLE)))
    except ValueError:
        return DEFAULT_IDLE


def runtime_dir(env: Mapping[str, str] = os.environ) -> Path | None:
    """The folder of this user's runner sockets (as `env` names it), created 0700; None when it is not safe
    to use (another user's, a symbolic link, or open to others) or cannot be made."""
    chosen = env.get(WARM_DIR_ENV)
    if chosen:
        folder = Path(chosen)
    else:
        xdg = env.get("XDG_RUNTIME_DIR")
        if xdg and os.path.isdir(xdg):
            folder = Path(xdg) / "beprepared-warm"
        else:
            import tempfile

            folder = Path(tempfile.gettempdir()) / f"beprepared-warm-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, parents=bool(chosen), exist_ok=True)
        info = os.lstat(folder)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return folder


@dataclass(frozen=True)
class Client:
    """This process as it started: its environment and `sys.path` (a run changes both: DAGSTER_HOME, the
    workflow file's folder) and the key of the runner that can run its command."""

    env: dict[str, str]
    path: list[str]
    key: str

    @classmethod
    def now(cls) -> Client:
        env, path = dict(os.environ), list(sys.path)
        return cls(env, path, runner_key(env, path))


def runner_key(env: dict[str, str], path: list[str]) -> str:
    """What a runner must share with a process of this environment and `sys.path` to run its command as
    that process would (see the module): 20 hex digits of a SHA-256."""
    env = sorted((k, v) for k, v in env.items() if k.startswith(_KEY_ENV) and k not in _NOT_KEY_ENV)
    digest = hashlib.sha256(json.dumps([sys.executable, sys.version, str(sys.flags), path, env]).encode())
    for entry in path:
        with contextlib.suppress(OSError):
            digest.update(f"{entry}\0{os.stat(entry).st_mtime_ns}\n".encode() if entry else b"")
    package = Path(__file__).resolve().parents[1]
    for root, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            with contextlib.suppress(OSError):
                info = os.stat(os.path.join(root, name))
                digest.update(f"{root}/{name}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def socket_path(folder: Path, key: str) -> Path:
    return folder / f"{key}.sock"


def delegate(client: Client, argv: list[str]) -> int | None:
    """Run the command line `argv` (argv[0] the program) in a warm runner with this process's terminal,
    folder, environment and umask; its exit status. None when no runner took it (then nothing ran: the
    caller runs it here)."""
    folder = runtime_dir()
    if folder is None:
        return None
    conn = _connect(socket_path(folder, client.key))
    if conn is None:
        return None
    with conn:
        request = {
            "argv": argv,
            "cwd": os.getcwd(),
            "env": client.env,
            "umask": _umask(),
            "path": client.path,
        }
        try:
            send_request(conn, request, fds=[0, 1, 2])
            reader = conn.makefile("rb")
            conn.settimeout(30)  # a runner answers at once; one that does not is not waited for
            started = read_reply(reader)
            conn.settimeout(None)
        except OSError:  # timeouts included
            return None
        if not started or not isinstance(started.get("pid"), int):
            return None  # refused before anything ran
        return _wait(reader, started["pid"])


def _wait(reader: Any, pid: int) -> int:
    """Wait for the child's status, passing on the signals a terminal or a supervisor sends us."""

    def forward(signum: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    def suspend(_signum: int, _frame: Any) -> None:
        """Ctrl-Z: stop the command, then this process as the terminal asked (job control as usual)."""
        forward(signal.SIGSTOP, None)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)  # stops here until `fg`/`bg` sends SIGCONT

    def resume(_signum: int, _frame: Any) -> None:
        signal.signal(signal.SIGTSTP, suspend)
        forward(signal.SIGCONT, None)

    handlers = {**dict.fromkeys(FORWARDED, forward), signal.SIGTSTP: suspend, signal.SIGCONT: resume}
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        done = read_reply(reader)
    except OSError:
        done = None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not done:  # the runner died: the command may still be running
        while _alive(pid):
            time.sleep(0.1)
        print("beprepared: the warm runner ended without reporting the command's status", file=sys.stderr)
        return 1
    if isinstance(done.get("signal"), int):
        return 128 + done["signal"]
    return int(done.get("exit", 1))


def start_runner(client: Client) -> None:
    """Start a warm runner for `client`'s key in the background (its own session, no terminal), unless one
    is serving or starting. Never raises: without a runner the next command simply runs in its own
    process."""
    folder = runtime_dir()
    if folder is None:
        return
    key = client.key
    probe = _connect(socket_path(folder, key))
    if probe is not None:
        probe.close()
        return
    if _locked(folder / f"{key}.lock"):
        return  # one is starting
    log = folder / f"{key}.log"
    with contextlib.suppress(OSError):
        if time.time() - log.stat().st_mtime < RETRY_AFTER:
            return  # the last one for this key failed (its log says why; a clean end removes it)
    import subprocess

    env = {**client.env, PATH_ENV: json.dumps(client.path)}
    flags = subprocess._args_from_interpreter_flags()  # -O, -X …: the commands run as this one would
    command = [sys.executable, *flags, "-m", "beprepared_dagster.orchestration.warm_server", str(folder), key]
    with contextlib.suppress(OSError), open(log, "wb") as output:
        subprocess.Popen(
            [*command, str(idle_seconds())],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            cwd="/",
            env=env,
            start_new_session=True,
        )


def runners(env: Mapping[str, str] = os.environ) -> list[dict[str, Any]]:
    """Every runner listening in this user's folder (as `env` names it): its status (pid, key, commands
    served, idle limit)."""
    folder = runtime_dir(env)
    found = []
    for sock in sorted(folder.glob("*.sock")) if folder else []:
        status = ask(sock, {"status": True})
        if status is not None:
            found.append(status)
    return found


def stop_runners() -> int:
    """Ask every runner in this user's folder to exit once its running commands end; how many were asked."""
    folder = runtime_dir()
    return (
        sum(ask(sock, {"stop": True}) is not None for sock in sorted(folder.glob("*.sock"))) if folder else 0
    )


def ask(sock: Path, request: dict[str, Any]) -> dict[str, Any] | None:
    conn = _connect(sock)
    if conn is None:
        return None
    with conn:
        try:
            conn.settimeout(5)  # a runner busy stopping answers no more
            send_request(conn, request, fds=[])
            return read_reply(conn.makefile("rb"))
        except OSError:
            return None


# --- the wire: a 4-byte length and a JSON request (file descriptors alongside); JSON lines back ----------


def send_request(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    body = json.dumps(request).encode()
    data = struct.pack("!I", len(body)) + body
    sent = socket.send_fds(conn, [data], fds) if fds else conn.send(data)
    if sent < len(data):  # not a send of nothing: the runner may have answered and closed already
        conn.sendall(data[sent:])


def receive_request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """The request and the descriptors that came with it (the caller owns and closes them).

    Raises:
        ValueError: not a request of ours.
        OSError: the connection failed.
    """
    data, fds, _flags, _addr = socket.recv_fds(conn, 65536, 3)
    try:
        if len(data) < 4:
            raise ValueError("short request")
        (size,) = struct.unpack("!I", data[:4])
        if size > MAX_REQUEST:
            raise ValueError(f"request of {size} bytes")
        body = data[4:]
        while len(body) < size:
            chunk = conn.recv(min(65536, size - len(body)))
            if not chunk:
                raise ValueError("request cut short")
            body += chunk
        request = json.loads(body[:size])
        if not isinstance(request, dict):
            raise ValueError("request is not an object")
        return request, fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def send_reply(conn: socket.socket, reply: dict[str, Any]) -> None:
    conn.sendall(json.dumps(reply).encode() + b"\n")


def read_reply(reader: Any) -> dict[str, Any] | None:
    line = reader.readline(MAX_REQUEST)
    if not line:
        return None
    try:
        reply = json.loads(line)
    except ValueError:
        return None
    return reply if isinstance(reply, dict) else None


def _connect(path: Path) -> socket.socket | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        return None
    return conn


def _locked(path: Path) -> bool:
    """Whether another process holds the (advisory) lock of `path`: a runner starting or serving."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing lets go of a lock we took
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
