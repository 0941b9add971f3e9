"""Load workflow files: run them in "define" mode, where `workspace.run()` declares instead of running."""

from __future__ import annotations

import os
import runpy
from pathlib import Path

import beprepared_dagster
from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.workflow import Loader, Workflow, Workspace, _slugify, reset_loader, set_loader

WORKFLOWS_ENV = "BEPREPARED_WORKFLOWS"
DEMO_WORKFLOW = Path(__file__).resolve().parent.parent / "demo" / "workflow.py"


def workflow_files() -> list[Path]:
    """Files named by $BEPREPARED_WORKFLOWS (separated by ':' or ','), else the bundled demo."""
    value = os.environ.get(WORKFLOWS_ENV, "").strip()
    if not value:
        return [DEMO_WORKFLOW]
    parts = [p for chunk in value.split(os.pathsep) for p in chunk.split(",") if p.strip()]
    return [Path(p.strip()).expanduser().resolve() for p in parts]


def load_file(path: Path, workspace: str | os.PathLike | None = None) -> list[Workflow]:
    """Execute a workflow file and return the workflows it declares. Nodes built outside any
    `with Workspace(...)` form a workflow named after the file, in `workspace` (as `beprepared run` did)."""
    if not path.is_file():
        raise WorkflowError(f"workflow file {path} does not exist")
    loader = Loader()
    token = set_loader(loader)
    try:
        with Workspace(workspace, name=_slugify(path.stem)) as default:
            # Like the original, a workflow file may use the DSL without importing it.
            names = {n: getattr(beprepared_dagster, n) for n in beprepared_dagster.__all__}
            runpy.run_path(str(path), init_globals={**names, "workspace": default}, run_name="__beprepared__")
    finally:
        reset_loader(token)
    if not loader.workflows:
        raise WorkflowError(f"{path} declares no workflow (no nodes were built)")
    return loader.workflows


def load_workflows(files: list[Path] | None = None) -> list[Workflow]:
    workflows: list[Workflow] = []
    for path in files or workflow_files():
        workflows.extend(load_file(path))
    return workflows
