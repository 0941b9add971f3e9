"""Workflows → one `Definitions`: stage assets, discovery sensors, the in-process executor."""

from __future__ import annotations

import dagster as dg

from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.nodes.base import SinkNode
from beprepared_dagster.orchestration.assets import asset_key, build_stage_assets
from beprepared_dagster.orchestration.sensors import build_discovery_sensor
from beprepared_dagster.workflow import Workflow


def automated_keys(workflow: Workflow) -> list[dg.AssetKey]:
    """The partitioned stages a discovery run materializes (up to the first human stage, when there is one)."""
    return [asset_key(workflow, s) for s in workflow.stages if not isinstance(s.node, SinkNode)]


def build_definitions(workflows: list[Workflow]) -> dg.Definitions:
    names = [w.name for w in workflows]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise WorkflowError(f"two workflows are named {duplicates[0]!r}; give each a unique name")
    assets: list[dg.AssetsDefinition] = []
    sensors: list[dg.SensorDefinition] = []
    for workflow in workflows:
        assets.extend(build_stage_assets(workflow))
        sensors.append(build_discovery_sensor(workflow, automated_keys(workflow)))
    # Stages run one after another over a range in one process: no subprocess per step, models load once.
    return dg.Definitions(assets=assets, sensors=sensors, executor=dg.in_process_executor)
