"""When and where the labeling app starts.

- `dagster dev`: `definitions.py` calls `start_with_code_server`, which starts the app in a daemon thread of
  Dagster's code-server process (`dagster api grpc`) only — never in run workers, the webserver, the daemon or
  a test importing the definitions. The app lives and dies with that process: nothing is left after `dagster
  dev` exits (even on SIGKILL), and after a code-location reload the new code server takes the port over
  as soon as the old one is gone.
- A headless `workflow.run()`: the runner calls `ensure_serving`, which serves from its own process unless the
  configured port already serves the labeling app (a `dagster dev` next to it).
- `python -m beprepared_dagster.labeling`: standalone.
"""

from __future__ import annotations

import json
import logging
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
    return _running


def ensure_serving(workflows: list[Workflow], timeout: float = 60) -> LabelingServer | None:
    """Serve `workflows` from this process, unless the configured port already serves the labeling app
    (then its tabs are used; a warning names any stage it lacks). Returns the server started, if any."""
    global _running
    if not has_human_stage(workflows) or config.mode() == "off":
        return None
    settings = config.settings_from_env()
    if _running is not None:
        return _running
    served = probe(settings)
    if served is not None:
        wanted = {f"{w.name}/{s.name}" for w in workflows for s in w.stages if isinstance(s.node, HumanNode)}
        missing = sorted(wanted - set(served)) if served else []
        if missing:
            log.warning(
                "the labeling app on %s does not serve %s; stop it or set %s to another port",
                settings.url,
                ", ".join(missing),
                config.PORT_ENV,
            )
        return None
    _running = LabelingServer(workflows, settings).start()
    if not _running.wait_ready(timeout):
        log.warning(
            "the labeling app did not come up within %.0fs (%s)", timeout, _running.error or "port busy"
        )
    return _running


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
