"""When and where the labeling app starts.

- `dagster dev`: `definitions.py` calls `start_with_code_server`, which starts the app in a daemon thread of
  Dagster's code-server process (`dagster api grpc`) only — never in run workers, the webserver, the daemon or
  a test importing the definitions. The app lives and dies with that process: nothing is left after `dagster
  dev` exits (even on SIGKILL), and after a code-location reload the new code server takes the port over
  as soon as the old one is gone. If the code server itself dies (`kill -9`), a small watcher process
  (`watchdog`) asks Dagster's code-server proxy to reload the location, so the app and the sensors come back
  without a restart of `dagster dev`.
- A headless `workflow.run()`: the runner calls `ensure_serving`, which serves from its own process unless the
  configured port already serves the labeling app with the workflow's tabs (a `dagster dev` next to it).
  When the port is taken otherwise (another program, or an app without these tabs), it serves on the next
  free port and says so, or, when the user chose the port (or the public URL), fails naming it: it never
  waits on an app that cannot serve.
- `python -m beprepared_dagster.labeling`: standalone.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import urllib.error
import urllib.request

from beprepared_dagster.labeling import config
from beprepared_dagster.labeling.server import LabelingServer
from beprepared_dagster.nodes.base import HumanNode
from beprepared_dagster.workflow import Workflow

log = logging.getLogger("beprepared.labeling")

_running: LabelingServer | None = None


def is_code_server(argv: list[str]) -> bool:
    """True in `python -m dagster api grpc …` / `dagster api grpc …` (what `dagster dev` runs per location)."""
    return len(argv) >= 3 and "dagster" in argv[0] and argv[1:3] == ["api", "grpc"]


def has_human_stage(workflows: list[Workflow]) -> bool:
    return any(isinstance(s.node, HumanNode) for w in workflows for s in w.stages)


def start_with_code_server(workflows: list[Workflow], argv: list[str] | None = None) -> LabelingServer | None:
    """Start the app in the background when this process is Dagster's code server; otherwise do nothing.
    Never raises: a bad setting is logged, and the code location still loads."""
    global _running
    if not is_code_server(sys.argv if argv is None else argv) or not has_human_stage(workflows):
        return None
    try:
        if config.mode() == "off":
            return None
        settings = config.settings_from_env()
    except config.LabelingConfigError as exc:
        log.error("labeling app not started: %s", exc)
        return None
    if _running is None:
        _running = LabelingServer(workflows, settings).start()
        _watch_code_server()
    return _running


def _watch_code_server() -> None:
    """Start the watcher that reloads the code location if this process dies (see `watchdog`)."""
    from beprepared_dagster.labeling import watchdog

    try:
        watchdog.start_for_code_server()
    except (OSError, ImportError) as exc:
        log.warning(
            "labeling app: no watcher for the code server (%s); after a crash, Reload the location", exc
        )


def ensure_serving(workflows: list[Workflow], timeout: float = 60) -> LabelingServer | None:
    """Serve `workflows` from this process, unless the configured port already serves the labeling app with
    their tabs. Returns the server started, if any; raises `LabelingConfigError` when it cannot serve."""
    global _running
    if not has_human_stage(workflows) or config.mode() == "off":
        return None
    settings = config.settings_from_env()
    if _running is not None:
        return _running
    served = probe(settings)
    problem = None
    if served is not None:
        wanted = {f"{w.name}/{s.name}" for w in workflows for s in w.stages if isinstance(s.node, HumanNode)}
        missing = sorted(wanted - set(served)) if served else []  # [] behind a login: trust it
        if not missing:
            return None
        problem = f"the labeling app on {settings.url} does not serve {', '.join(missing)}"
    elif not config.port_is_free(settings.host, settings.port):
        problem = f"port {settings.port} ({settings.host}) is taken by another program"
    if problem:
        settings = _another_port(settings, problem)
    server = LabelingServer(workflows, settings).start()
    if not server.wait_ready(timeout):
        server.stop(timeout=1)
        raise config.LabelingConfigError(
            f"the labeling app did not come up on {settings.host}:{settings.port} within {timeout:.0f}s"
            f" ({server.error or 'port busy'}); set {config.PORT_ENV} to a free port"
        )
    _running = server
    return _running


def _another_port(settings: config.LabelingSettings, problem: str) -> config.LabelingSettings:
    """Move to the next free port (and say so), or fail when the user chose this one."""
    if config.port_is_explicit():
        raise config.LabelingConfigError(f"{problem}; set {config.PORT_ENV} to a free port")
    port = config.next_free_port(settings.host, settings.port + 1)
    if port is None:
        raise config.LabelingConfigError(f"{problem}, and so are the next ports; set {config.PORT_ENV}")
    os.environ[config.PORT_ENV] = str(port)  # every tab URL printed from now on points there
    log.warning("%s; the labeling app serves on port %d instead", problem, port)
    return dataclasses.replace(settings, port=port)


def probe(settings: config.LabelingSettings, timeout: float = 2.0) -> list[str] | None:
    """The tabs of a labeling app already answering on the configured port ([] when it hides them behind
    its login), or None when none answers."""
    url = settings.url + "beprepared/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.loads(response.read().decode())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    if not isinstance(body, dict) or body.get("app") != "beprepared-labeling":
        return None
    return list(body.get("tabs") or [])


def stop() -> None:
    """Stop the app this process started (tests; a runner that is done)."""
    global _running
    if _running is not None:
        _running.stop()
        _running = None
