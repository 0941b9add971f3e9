"""Load workflow files: run them in "define" mode, where `workspace.run()` declares instead of running."""

from __future__ import annotations

import os
from pathlib import Path

from beprepared_dagster.workflow import Workflow, load_file

__all__ = ["WORKFLOWS_ENV", "load_file", "load_workflows", "workflow_files"]

WORKFLOWS_ENV = "BEPREPARED_WORKFLOWS"
DEMO_WORKFLOW = Path(__file__).resolve().parent.parent / "demo" / "workflow.py"


def workflow_files() -> list[Path]:
    """Files named by $BEPREPARED_WORKFLOWS (separated by ':' or ','), else the bundled demo."""
    value = os.environ.get(WORKFLOWS_ENV, "").strip()
    if not value:
        return [DEMO_WORKFLOW]
    parts = [p for chunk in value.split(os.pathsep) for p in chunk.split(",") if p.strip()]
    return [Path(p.strip()).expanduser().resolve() for p in parts]


def load_workflows(files: list[Path] | None = None) -> list[Workflow]:
    workflows: list[Workflow] = []
    for path in files or workflow_files():
        workflows.extend(load_file(path))
    return workflows
