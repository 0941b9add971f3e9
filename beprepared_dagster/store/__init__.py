"""The workspace store: DuckDB properties and cache, the content-addressed object store, the file index.

Dagster-free and Gradio-free by design (see DESIGN.md §2).
"""

from beprepared_dagster.store.db import Database
from beprepared_dagster.store.objects import ObjectStore
from beprepared_dagster.store.workspace import WorkspaceStore, resolve_workspace_dir

__all__ = ["Database", "ObjectStore", "WorkspaceStore", "resolve_workspace_dir"]
