"""The discovery sensor of a workflow: new files in its Load folders become partitions and ONE range run."""

import os

import dagster as dg

from beprepared_dagster.orchestration.discovery import discover
from beprepared_dagster.orchestration.partitions import partitions_def, partitions_name, range_tags
from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster.workflow import Workflow

INTERVAL_ENV = "BEPREPARED_SENSOR_INTERVAL"
# Dagster recommends at most 25k partition additions per evaluation; the rest waits for the next tick.
MAX_NEW_PER_TICK = 10_000


def build_discovery_sensor(workflow: Workflow, automated: list[dg.AssetKey]) -> dg.SensorDefinition:
    parts = partitions_def(workflow)
    store = WorkspaceStore(workflow.workspace_dir)

    @dg.sensor(
        name=f"{workflow.name}_discover_images",
        minimum_interval_seconds=int(os.environ.get(INTERVAL_ENV, "30")),
        default_status=dg.DefaultSensorStatus.RUNNING,
        target=automated,
        description=f"Scans the Load folders of {workflow.name!r}; new images become partitions and one run.",
    )
    def _discover(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        existing = set(context.instance.get_dynamic_partitions(partitions_name(workflow)))
        found = discover(store, workflow, existing, context.log)
        if not found.new_keys:
            return dg.SkipReason(f"no new images ({found.files} files, {len(existing)} images known)")
        new = found.new_keys[:MAX_NEW_PER_TICK]
        context.log.info(f"{len(new)} new image(s) of {found.files} file(s); launching one run over them")
        return dg.SensorResult(
            dynamic_partitions_requests=[parts.build_add_request(new)],
            run_requests=[
                dg.RunRequest(
                    run_key=f"discover-{new[0][:16]}-{new[-1][:16]}-{len(new)}",
                    asset_selection=automated,
                    tags={**range_tags(new[0], new[-1]), "beprepared/trigger": "discovery"},
                )
            ],
        )

    return _discover
