"""Bring the code location (and the labeling app inside it) back after Dagster's code server dies.

Under `dagster dev`, each code location runs as `dagster code-server start` (a proxy) with `dagster api grpc`
(the code server) as its child; the labeling app and every sensor live in that child. Killed (`kill -9`, the
OOM killer), the child is not restarted: the location shows an error, sensors stop and the app stays down
until someone clicks Reload. The code server therefore starts this small watcher process next to it; when
the code server is gone while the proxy and `dagster dev` still run — and no newer code server replaced it
(a Reload) — it asks the proxy to reload the location over its gRPC socket, exactly what the UI's Reload
does. The new code server starts the app again (and a watcher of its own); this one exits. It also exits
when the proxy is gone (`dagster dev` stopped), so nothing outlives `dagster dev`.

    python -m beprepared_dagster.labeling.watchdog CODE_SERVER_PID PROXY_PID (--socket PATH | --port N [--host H])
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time

log = logging.getLogger("beprepared.labeling.watchdog")

POLL_SECONDS = 0.5
GRACE_SECONDS = (
    2.0  # after the code server is gone: a shutting-down dagster dev takes its proxy along by then
)


def proxy_address(proxy_pid: int) -> list[str] | None:
    """`--socket PATH` or `--port N [--host H]` of a `dagster code-server start` process, else None."""
    import psutil

    try:
        argv = psutil.Process(proxy_pid).cmdline()
    except (psutil.Error, OSError):
        return None
    if "code-server" not in argv or "start" not in argv:
        return None
    found: list[str] = []
    for flag in ("--socket", "--port", "--host"):
        if flag in argv and argv.index(flag) + 1 < len(argv):
            found += [flag, argv[argv.index(flag) + 1]]
    return found if ("--socket" in found or "--port" in found) else None


def start_for_code_server() -> subprocess.Popen | None:
    """In a code server started by `dagster code-server start`: launch the watcher (None elsewhere)."""
    proxy = os.getppid()
    address = proxy_address(proxy)
    if address is None:
        return None
    cmd = [
        sys.executable,
        "-m",
        "beprepared_dagster.labeling.watchdog",
        str(os.getpid()),
        str(proxy),
        *address,
    ]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, close_fds=True)


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, OSError):
        return False


def _replaced(proxy_pid: int, old_pid: int) -> bool:
    """The proxy runs another code server than the one that died (a Reload started it)."""
    import psutil

    try:
        children = psutil.Process(proxy_pid).children()
    except (psutil.Error, OSError):
        return False
    for child in children:
        try:
            if child.pid != old_pid and child.status() != psutil.STATUS_ZOMBIE and "grpc" in child.cmdline():
                return True
        except (psutil.Error, OSError):
            continue
    return False


def _dev_running(proxy_pid: int) -> bool:
    """`dagster dev` (the proxy's parent) still runs, with its webserver."""
    import psutil

    try:
        dev = psutil.Process(proxy_pid).parent()
        if dev is None or not _alive(dev.pid):
            return False
        return any("dagster_webserver" in " ".join(c.cmdline()) for c in dev.children() if _alive(c.pid))
    except (psutil.Error, OSError):
        return False


def reload_location(address: list[str], timeout: float = 120) -> None:
    from dagster._grpc.client import DagsterGrpcClient

    options = dict(zip(address[::2], address[1::2], strict=True))
    client = DagsterGrpcClient(
        socket=options.get("--socket"),
        port=int(options["--port"]) if "--port" in options else None,
        host=options.get("--host", "localhost"),
    )
    try:
        client.reload_code(timeout=timeout)
    except Exception as exc:  # noqa: BLE001 — the proxy restarts the server even when its answer is an error
        log.warning("reload of the code location answered: %s", exc)


def watch(code_server: int, proxy: int, address: list[str]) -> str:
    """Wait for the code server to go; returns what was done (for the log and tests)."""
    while _alive(code_server):
        if not _alive(proxy):
            return "proxy gone"
        time.sleep(POLL_SECONDS)
    time.sleep(GRACE_SECONDS)
    if not _alive(proxy) or not _dev_running(proxy):
        return "dagster dev is stopping"
    if _replaced(proxy, code_server):
        return "replaced by a reload"
    print(
        f"beprepared: the code server (pid {code_server}) is gone; reloading the code location "
        "(the labeling app and the sensors come back by themselves)",
        file=sys.stderr,
        flush=True,
    )
    reload_location(address)
    return "reloaded"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m beprepared_dagster.labeling.watchdog")
    parser.add_argument("code_server", type=int)
    parser.add_argument("proxy", type=int)
    parser.add_argument("--socket")
    parser.add_argument("--port")
    parser.add_argument("--host")
    args = parser.parse_args(argv)
    address = [
        x
        for flag in ("socket", "port", "host")
        if getattr(args, flag)
        for x in (f"--{flag}", getattr(args, flag))
    ]
    watch(args.code_server, args.proxy, address)
    return 0


if __name__ == "__main__":
    sys.exit(main())
