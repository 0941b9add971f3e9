"""`defs` for `dagster dev` (workspace.yaml points here): the workflows of $BEPREPARED_WORKFLOWS, else the demo.

In Dagster's code-server process the labeling app starts too (see `labeling/launcher.py`); anywhere else
(run workers, tests importing this module) that call does nothing."""

from beprepared_dagster.labeling.launcher import start_with_code_server
from beprepared_dagster.orchestration.defs import build_definitions
from beprepared_dagster.orchestration.loader import load_workflows

_workflows = load_workflows()
defs = build_definitions(_workflows)
start_with_code_server(_workflows)
