"""Workflows → one `Definitions`: stage assets, discovery and label sensors, the in-process executor."""

from __future__ import annotations

import dagster as dg

from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.orchestration.assets import build_stage_assets
from beprepared_dagster.orchestration.sensors import build_sensors
from beprepared_dagster.orchestration.stats import build_stats_asset
from beprepared_dagster.workflow import Workflow


def build_definitions(workflows: list[Workflow]) -> dg.Definitions:
    names = [w.name for w in workflows]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise WorkflowError(f"two workflows are named {duplicates[0]!r}; give each a unique name")
    assets: list[dg.AssetsDefinition] = []
    sensors: list[dg.SensorDefinition] = []
    for workflow in workflows:
        assets.extend(build_stage_assets(workflow))
        assets.extend(a for a in [build_stats_asset(workflow)] if a is not None)  # <workflow>/dataset_stats
        sensors.extend(build_sensors(workflow))
    # Stages run one after another over a range in one process: no subprocess per step, models load once.
    return dg.Definitions(assets=assets, sensors=sensors, executor=dg.in_process_executor)
