"""`defs` for `dagster dev` (workspace.yaml points here): the workflows of $BEPREPARED_WORKFLOWS, else the demo."""

from beprepared_dagster.orchestration.defs import build_definitions
from beprepared_dagster.orchestration.loader import load_workflows

defs = build_definitions(load_workflows())
