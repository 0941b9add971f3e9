"""Labels reach Dagster and the export whatever ran before: the label sensors of a three-human-stage
workflow (the demo's shape) over histories a user walks — a "Materialize all" backfill first, partial labels
in several stages, re-labels and undo — on a real Dagster instance, real DuckDB and the real label journal.

Each sensor tick is evaluated as the daemon would, and its run requests are executed exactly as requested
(selection + range tags). Does not cover the daemon's own timing or the UI (see e2e/)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from beprepared_dagster import (
    ConvertFormat,
    FilterBySize,
    HumanCaption,
    HumanFilter,
    HumanTag,
    Load,
    Save,
    SetCaption,
    Workflow,
)
from beprepared_dagster.orchestration.defs import build_definitions
from beprepared_dagster.orchestration.instance import open_instance
from beprepared_dagster.orchestration.partitions import RANGE_END, RANGE_START, partitions_name, range_tags
from beprepared_dagster.orchestration.planning import plan
from beprepared_dagster.store import WorkspaceStore
from beprepared_dagster.store.stages import read_rows

pytestmark = pytest.mark.slow

HF, HT, HC = "human_filter", "human_tag", "human_caption"


def demo_like(photos: Path, ws: Path) -> Workflow:
    return Workflow(
        "demo",
        Load(photos)
        >> FilterBySize(min_edge=512)
        >> HumanFilter
        >> ConvertFormat("PNG")
        >> HumanTag(tags=["dog", "cat"])
        >> SetCaption("ohwx")
        >> HumanCaption
        >> Save,
        workspace=ws,
    )


class Daemon:
    """Evaluates every sensor of the workflow like the daemon does and executes what they request."""

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.store = WorkspaceStore(workflow.workspace_dir)
        self.instance = open_instance(self.store)
        self.defs = build_definitions([workflow])
        self.cursors: dict[str, str | None] = {}
        self.executed: list[dg.RunRequest] = []

    @property
    def keys(self) -> list[str]:
        return list(self.instance.get_dynamic_partitions(partitions_name(self.workflow)))

    def tick(self, sensor_name: str) -> list[dg.RunRequest]:
        sensor = self.defs.get_sensor_def(sensor_name)
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursors.get(sensor_name))
        result = sensor(context)
        if isinstance(result, dg.SkipReason):
            return []
        if result.dynamic_partitions_requests:
            for request in result.dynamic_partitions_requests:
                self.instance.add_dynamic_partitions(
                    request.partitions_def_name, list(request.partition_keys)
                )
        self.cursors[sensor_name] = result.cursor
        for request in result.run_requests or []:
            self.execute(request.asset_selection, request.tags)
            self.executed.append(request)
        return list(result.run_requests or [])

    def execute(self, selection: list[dg.AssetKey], tags: dict[str, str]) -> None:
        assets = list(self.defs.assets or [])
        assert dg.materialize(assets, selection=selection, instance=self.instance, tags=tags).success

    def settle(self) -> list[dg.RunRequest]:
        """Tick every sensor until none requests anything (at most a few rounds)."""
        names = [f"demo_{s}_labels" for s in (HF, HT, HC)] + ["demo_discover_images"]
        before = len(self.executed)
        for _ in range(6):
            if not [r for name in names for r in self.tick(name)]:
                return self.executed[before:]
        raise AssertionError("sensors did not settle")

    def backfill_everything(self) -> None:
        """What "Materialize all → All → Launch backfill" runs: every asset over every partition, one run."""
        keys = self.keys
        self.execute([a.key for a in self.defs.assets], range_tags(keys[0], keys[-1]))

    def latest(self, stage: str, key: str) -> int | None:
        records = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(["demo", stage]), asset_partitions=[key]), limit=1
        ).records
        return records[0].storage_id if records else None

    def status(self, stage: str, key: str) -> str:
        with self.store.db.connect() as conn:
            return read_rows(conn, "demo", stage, [key])[key][0].status

    def names(self, keys: list[str]) -> set[str]:
        with self.store.db.connect() as conn:
            rows = read_rows(conn, "demo", "load", keys)
        return {Path(rows[k][0].props["original_path"]).name for k in keys}

    def shown(self) -> list[str]:
        """The big images (kept by FilterBySize), in insertion order: what the HumanFilter tab shows."""
        return [k for k in self.keys if self.status("filter_by_size", k) == "kept"]


def label(ws: Path, kind: str, keys: list[str], value: dict | None) -> None:
    journal = WorkspaceStore(ws).journal
    for key in keys:
        journal.append("default", kind, key, value)


def exported(ws: Path) -> set[str]:
    """Source file names in the export (files are named `<original name>_<object id>.png`)."""
    return {p.stem.rsplit("_", 1)[0] for p in (ws / "output").glob("*.png")}


@pytest.fixture
def daemon(photos, workspace_dir) -> Daemon:
    workflow = demo_like(photos, workspace_dir)
    d = Daemon(workflow)
    d.settle()  # discovery: the automated stages above HumanFilter
    assert len(d.shown()) == 4
    return d


def test_after_a_backfill_partial_labels_become_materializations_on_the_next_tick(daemon, workspace_dir):
    daemon.backfill_everything()
    shown = daemon.shown()
    before = {k: daemon.latest(HF, k) for k in shown}
    label(workspace_dir, "filter", shown[:3], {"keep": True})

    requests = daemon.tick(f"demo_{HF}_labels")

    assert len(requests) == 1, "3 labeled of 4 waiting must not wait for the 4th"
    assert (requests[0].tags[RANGE_START], requests[0].tags[RANGE_END]) == (shown[0], shown[2])
    for key in shown[:3]:
        assert daemon.latest(HF, key) > before[key]
        assert daemon.status(HF, key) == "kept"
    assert daemon.latest(HF, shown[3]) == before[shown[3]]
    assert daemon.status(HF, shown[3]) == "pending"


def test_partial_labels_in_every_stage_after_a_backfill_reach_the_export(daemon, workspace_dir):
    daemon.backfill_everything()
    shown = daemon.shown()
    label(workspace_dir, "filter", shown[:3], {"keep": True})
    daemon.settle()
    # Tags for two of them, a caption for the third before its tags: it must wait at HumanTag.
    label(workspace_dir, "tag", shown[:2], {"tags": ["dog"], "version": 1})
    label(workspace_dir, "caption", shown[:3], {"caption": "a good dog", "version": 1})
    daemon.settle()

    assert [daemon.status(HC, k) for k in shown] == ["kept", "kept", "pending", "pending"]
    assert exported(workspace_dir) == daemon.names(shown[:2]), "the export follows the labels by itself"
    assert plan(daemon.store, daemon.workflow, daemon.keys).runs == []

    label(workspace_dir, "tag", shown[2:3], {"tags": ["cat"], "version": 1})
    daemon.settle()
    assert exported(workspace_dir) == daemon.names(shown[:3])


def test_relabel_and_undo_after_a_backfill(daemon, workspace_dir):
    daemon.backfill_everything()
    shown = daemon.shown()
    label(workspace_dir, "filter", shown, {"keep": True})
    label(workspace_dir, "tag", shown, {"tags": ["dog"], "version": 1})
    label(workspace_dir, "caption", shown, {"caption": "x", "version": 1})
    daemon.settle()
    assert exported(workspace_dir) == daemon.names(shown)

    daemon.backfill_everything()  # again, with everything labeled: nothing changes
    label(workspace_dir, "filter", shown[1:2], {"keep": False})  # re-label
    label(workspace_dir, "tag", shown[2:3], None)  # undo
    daemon.settle()

    assert daemon.status(HF, shown[1]) == "rejected"
    assert daemon.status(HT, shown[2]) == "pending"
    assert exported(workspace_dir) == daemon.names([shown[0], shown[3]])
    label(workspace_dir, "tag", shown[2:3], {"tags": ["cat"], "version": 1})
    daemon.settle()
    assert exported(workspace_dir) == daemon.names([shown[0], shown[2], shown[3]])


def test_labels_given_before_the_backfill_are_applied_by_it_and_nothing_is_requested_twice(
    daemon, workspace_dir
):
    shown = daemon.shown()
    label(workspace_dir, "filter", shown[:2], {"keep": True})
    daemon.backfill_everything()
    assert [daemon.status(HF, k) for k in shown] == ["kept", "kept", "pending", "pending"]
    assert not daemon.tick(f"demo_{HF}_labels")
    label(workspace_dir, "filter", shown[2:3], {"keep": False})
    assert len(daemon.tick(f"demo_{HF}_labels")) == 1
    assert daemon.status(HF, shown[2]) == "rejected"


def test_save_says_how_many_images_wait_for_a_label_and_where(daemon, workspace_dir):
    daemon.backfill_everything()
    shown = daemon.shown()
    metadata = latest_save_metadata(daemon)
    assert metadata["waiting_for_label"].value == "4 at human_filter"
    assert "wait for a label (4 at human_filter)" in metadata["preview"].value
    label(workspace_dir, "filter", shown[:3], {"keep": True})
    label(workspace_dir, "filter", shown[3:], {"keep": False})
    daemon.settle()
    daemon.execute([dg.AssetKey(["demo", "save"])], {})
    assert latest_save_metadata(daemon)["waiting_for_label"].value == "3 at human_tag"


def latest_save_metadata(daemon: Daemon) -> dict:
    event = daemon.instance.get_latest_materialization_event(dg.AssetKey(["demo", "save"]))
    return event.asset_materialization.metadata
