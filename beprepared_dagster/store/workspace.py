"""Workspace folder layout: `beprepared.duckdb`, `labels.sqlite`, `objects/`, `cache/`, `dagster_home/`,
`output/`."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from beprepared_dagster.store.db import Database
from beprepared_dagster.store.labels import JOURNAL_NAME, LabelJournal
from beprepared_dagster.store.objects import ObjectStore

WORKSPACE_ENV = "BEPREPARED_WORKSPACE"


def resolve_workspace_dir(dir: str | os.PathLike | None) -> Path:
    """The workspace folder: the given one, else `$BEPREPARED_WORKSPACE`, else `./workspace` (absolute)."""
    chosen = dir if dir is not None else os.environ.get(WORKSPACE_ENV) or "workspace"
    return Path(chosen).expanduser().resolve()


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
