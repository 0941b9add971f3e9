"""Where a workflow file's relative paths land: `Workspace("mydataset")` and `Load("photos")` resolve in the
file's own folder, the same under `python flow.py`, `beprepared run` / `dagster dev` (both load the file with
`load_file`) and from any current directory; absolute paths, `$BEPREPARED_WORKSPACE` and code outside a
workflow file keep the current directory.

Does not start `dagster dev` or run the workflows (the loader is the code both entry points share)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from beprepared_dagster import Load, Workflow
from beprepared_dagster.orchestration.loader import load_workflows
from beprepared_dagster.store.workspace import WORKSPACE_ENV
from beprepared_dagster.workflow import Workspace, load_file

FLOW = """
import json
from beprepared_dagster import *

with Workspace("mydataset") as workspace:
    Load("photos") >> SetCaption("x") >> Save
    flow = workspace.workflow()

if __name__ == "__main__":
    print(json.dumps({"workspace": str(flow.workspace_dir), "load": str(flow.stages[0].node.dir)}))
"""


@pytest.fixture
def flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workflow file in `project/`, and the current directory somewhere else."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "flow.py").write_text(FLOW)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv(WORKSPACE_ENV, raising=False)
    return project / "flow.py"


def test_python_flow_py_resolves_in_the_files_folder(flow: Path):
    out = subprocess.run(
        [sys.executable, str(flow)], capture_output=True, text=True, check=True, cwd=Path.cwd()
    )
    paths = json.loads(out.stdout.strip().splitlines()[-1])
    assert paths == {"workspace": str(flow.parent / "mydataset"), "load": str(flow.parent / "photos")}


def test_beprepared_run_and_dagster_dev_load_the_same_paths(flow: Path):
    for workflow in (load_file(flow)[0], load_workflows([flow])[0]):
        assert workflow.workspace_dir == flow.parent / "mydataset"
        assert workflow.stages[0].node.dir == flow.parent / "photos"
        assert workflow.name == "mydataset"


def test_absolute_paths_and_the_environment_keep_their_meaning(flow: Path, monkeypatch: pytest.MonkeyPatch):
    data = flow.parent.parent / "data"
    flow.write_text(
        f"with Workspace({str(data / 'ws')!r}, name='abs') as w:\n    Load({str(data / 'in')!r}) >> Save\n"
        "Workflow('env', Load('~/photos') >> Save)\n"
    )
    monkeypatch.setenv(WORKSPACE_ENV, "from_env")  # a shell variable: relative to where the shell is
    monkeypatch.setenv("HOME", str(data))
    absolute, env = load_file(flow)
    assert (absolute.workspace_dir, absolute.stages[0].node.dir) == (data / "ws", data / "in")
    assert env.workspace_dir == Path.cwd() / "from_env"
    assert env.stages[0].node.dir == data / "photos"


def test_code_from_the_command_line_resolves_in_the_current_directory(flow: Path):
    """`beprepared exec` runs typed code from a temporary file: its paths are the shell's."""
    workflow = load_file(flow, base_dir=Path.cwd())[0]
    assert workflow.workspace_dir == Path.cwd() / "mydataset"
    assert workflow.stages[0].node.dir == Path.cwd() / "photos"


def test_code_outside_a_workflow_file_keeps_the_current_directory(flow: Path):
    with Workspace("mine") as workspace:
        Load("pics")
    assert workspace.dir == Path.cwd() / "mine"
    assert Workflow("w", Load("pics"), workspace="ws").workspace_dir == Path.cwd() / "ws"
