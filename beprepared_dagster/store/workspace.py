"""Workspace folder layout: `beprepared.duckdb`, `labels.sqlite`, `objects/`, `cache/`, `dagster_home/`,
`output/`."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cached_property
from pathlib import Path

from beprepared_dagster.store.db import Database
from beprepared_dagster.store.labels import JOURNAL_NAME, LabelJournal
from beprepared_dagster.store.objects import ObjectStore

WORKSPACE_ENV = "BEPREPARED_WORKSPACE"
LOADED_FILE_MODULE = "__beprepared__"  # the module name a workflow file runs under when a loader executes it

# While `beprepared run` or `dagster dev` executes a workflow file: the folder its relative paths resolve in.
_BASE_DIR: ContextVar[Path | None] = ContextVar("beprepared_base_dir", default=None)


def resolve_workspace_dir(dir: str | os.PathLike | None) -> Path:
    """The workspace folder: the given one, else `$BEPREPARED_WORKSPACE`, else `./workspace` (absolute).

    Relative paths here are relative to the current directory (a command-line `-w`); a workflow file's own
    `Workspace("mydataset")` goes through `resolve_in_workflow` first."""
    chosen = dir if dir is not None else os.environ.get(WORKSPACE_ENV) or "workspace"
    return Path(chosen).expanduser().resolve()


def workflow_dir() -> Path:
    """The folder a workflow's relative paths resolve in: the workflow file's own folder, the same whether
    it runs as `python flow.py`, `beprepared run flow.py` or is loaded by `dagster dev`; the current
    directory for code that is not a workflow file (a REPL, a notebook, a module importing the DSL)."""
    base = _BASE_DIR.get()
    if base is not None:
        return base
    # The first caller outside this package is the code that wrote the path. Only a script run as
    # `__main__` (or a file a loader executes) counts as a workflow file: anything else, e.g. a test module
    # under pytest, keeps the current directory, as before.
    frame = sys._getframe(1)
    while frame is not None and _in_package(frame.f_globals.get("__name__", "")):
        frame = frame.f_back
    if frame is None or frame.f_globals.get("__name__") not in ("__main__", LOADED_FILE_MODULE):
        return Path.cwd()
    file = frame.f_globals.get("__file__")
    return Path(file).resolve().parent if file else Path.cwd()


def resolve_in_workflow(path: str | os.PathLike) -> Path:
    """An absolute path for one written in a workflow (a workspace, a `Load` folder): `~` expanded,
    relative paths resolved in `workflow_dir()`."""
    chosen = Path(path).expanduser()
    return (chosen if chosen.is_absolute() else workflow_dir() / chosen).resolve()


@contextmanager
def paths_relative_to(folder: str | os.PathLike) -> Iterator[None]:
    """Resolve a workflow's relative paths in `folder` while a loader executes its file."""
    token = _BASE_DIR.set(Path(folder).expanduser().resolve())
    try:
        yield
    finally:
        _BASE_DIR.reset(token)


def _in_package(module: str) -> bool:
    package = __name__.split(".")[0]
    return module == package or module.startswith(package + ".")


class WorkspaceStore:
    """Paths and stores of one workspace folder. Creating it creates nothing on disk until used."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"WorkspaceStore({str(self.root)!r})"

    @cached_property
    def db(self) -> Database:
        return Database(self.root / "beprepared.duckdb")

    @cached_property
    def objects(self) -> ObjectStore:
        return ObjectStore(self.root / "objects")

    @cached_property
    def journal(self) -> LabelJournal:
        """The label journal (labels.sqlite): human decisions, durable per click."""
        return LabelJournal(self.root / JOURNAL_NAME)

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    def resolve_output(self, dir: str | os.PathLike | None) -> Path:
        """Save's target: relative paths are relative to the workspace (as in the original)."""
        target = Path(dir if dir is not None else "output").expanduser()
        return (target if target.is_absolute() else self.root / target).resolve()
