"""`python -m beprepared_dagster.labeling [--workspace DIR] [--host H] [--port P] [WORKFLOW_FILE ...]`:
serve the labeling app for the workflow files (default: `$BEPREPARED_WORKFLOWS`) until Ctrl+C / SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

from beprepared_dagster.errors import BeprepareError
from beprepared_dagster.labeling import config
from beprepared_dagster.labeling.server import LabelingServer
from beprepared_dagster.store.workspace import WORKSPACE_ENV, resolve_workspace_dir
from beprepared_dagster.workflow import Workflow, load_file


def load_workflow_file(path: Path) -> list[Workflow]:
    """The workflows a file declares, loaded in define mode (its `workspace.run()` does not run)."""
    return load_file(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m beprepared_dagster.labeling", description=__doc__)
    parser.add_argument("files", nargs="*", type=Path, help="workflow files (default: $BEPREPARED_WORKFLOWS)")
    parser.add_argument("-w", "--workspace", help="workspace folder for workflows that name none")
    parser.add_argument("--host", help=f"interface (default ${config.HOST_ENV} or 127.0.0.1)")
    parser.add_argument("--port", type=int, help=f"port (default ${config.PORT_ENV} or 7860)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.workspace:
        os.environ[WORKSPACE_ENV] = str(resolve_workspace_dir(args.workspace))
    files = args.files or [
        Path(p)
        for p in os.environ.get("BEPREPARED_WORKFLOWS", "").replace(",", os.pathsep).split(os.pathsep)
        if p
    ]
    if not files:
        parser.error("name at least one workflow file (or set BEPREPARED_WORKFLOWS)")
    try:
        settings = config.settings_from_env()
        workflows = [w for f in files for w in load_workflow_file(f.expanduser().resolve())]
    except BeprepareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = replace(
        settings, host=args.host or settings.host, port=settings.port if args.port is None else args.port
    )
    try:
        LabelingServer(workflows, settings).run()
    except BeprepareError as exc:  # e.g. a host that is not this machine's
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
