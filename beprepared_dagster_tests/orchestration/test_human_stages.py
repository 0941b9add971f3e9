"""Human stages headlessly, on a real Dagster instance, real DuckDB and the real label journal: waiting and
no-wait, labels becoming materializations of exactly the labeled partitions, re-label and undo reaching the
export, shared domains, HumanTag/HumanCaption semantics, and the label sensor's run requests.

Does not cover the labeling app or a browser (see labeling/) or the daemon ticking by itself (see e2e/)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from beprepared_dagster import (
    FilterBySize,
    HumanCaption,
    HumanFilter,
    HumanTag,
    Load,
    Save,
    Set,
    SetCaption,
    Workflow,
)
from beprepared_dagster.orchestration import runner
from beprepared_dagster.orchestration.defs import build_definitions
from beprepared_dagster.orchestration.instance import open_instance
from beprepared_dagster.orchestration.planning import plan
from beprepared_dagster.store import WorkspaceStore
from beprepared_dagster.store.stages import read_rows


def filter_workflow(photos: Path, ws: Path, name: str = "dogs", domain: str = "default") -> Workflow:
    return Workflow(
        name,
        Load(photos)
        >> FilterBySize(min_edge=512)
        >> HumanFilter(domain=domain)
        >> SetCaption("ohwx dog")
        >> Save,
        workspace=ws,
    )


def kept_upstream(ws: Path, workflow: str, stage: str) -> list[str]:
    """Images a person would see at the stage below `stage`, in insertion order."""
    store = WorkspaceStore(ws)
    keys = open_instance(store).get_dynamic_partitions(f"{workflow}_images")
    with store.db.connect() as conn:
        rows = read_rows(conn, workflow, stage)
    return [k for k in keys if rows.get(k) and rows[k][0].status == "kept"]


def exported(ws: Path) -> set[str]:
    return {p.stem for p in (ws / "output").glob("*.jpg")}


def materialized(ws: Path, workflow: str, stage: str) -> set[str]:
    instance = open_instance(WorkspaceStore(ws))
    return set(instance.get_materialized_partitions(dg.AssetKey([workflow, stage])))


def label(
    ws: Path, keys: list[str], keep: bool, kind: str = "filter", domain: str = "default", **extra
) -> None:
    journal = WorkspaceStore(ws).journal
    for key in keys:
        value = {"keep": keep} if kind == "filter" else extra
        journal.append(domain, kind, key, value)


def test_no_wait_stops_at_the_human_stage_and_labels_flow_to_the_export(photos, workspace_dir):
    workflow = filter_workflow(photos, workspace_dir)
    first = workflow.run(wait=False)
    assert first.waiting == {"human_filter": 4} and not first.saved
    assert not (workspace_dir / "output").exists()
    shown = kept_upstream(workspace_dir, "dogs", "filter_by_size")
    assert len(shown) == 4
    # The two small images were rejected upstream: the human stage already reports them, no label needed.
    assert len(materialized(workspace_dir, "dogs", "filter_by_size")) == 6

    label(workspace_dir, shown[:2], keep=True)
    label(workspace_dir, shown[2:3], keep=False)
    second = workflow.run(wait=False)
    assert second.waiting == {"human_filter": 1}
    assert [r.stages for r in second.runs] == [["human_filter", "set_caption"]]
    assert (second.runs[0].first, second.runs[0].last) == (shown[0], shown[2])  # exactly the labeled range
    human_done = materialized(workspace_dir, "dogs", "human_filter")
    assert set(shown[:3]) <= human_done and shown[3] not in human_done

    label(workspace_dir, shown[3:], keep=True)
    third = workflow.run(wait=False)
    assert third.saved and third.waiting == {}
    assert len(exported(workspace_dir)) == 3

    # Re-label keep → reject: a new materialization of that one partition, and the export follows.
    instance = open_instance(WorkspaceStore(workspace_dir))
    key = dg.AssetKey(["dogs", "human_filter"])
    before = instance.get_latest_materialization_event(key).run_id
    label(workspace_dir, shown[:1], keep=False)
    fourth = workflow.run(wait=False)
    assert [(r.first, r.last) for r in fourth.runs] == [(shown[0], shown[0])]
    assert instance.get_latest_materialization_event(key).run_id != before
    assert len(exported(workspace_dir)) == 2


def test_undo_makes_an_exported_image_wait_again(photos, workspace_dir):
    workflow = filter_workflow(photos, workspace_dir)
    workflow.run(wait=False)
    shown = kept_upstream(workspace_dir, "dogs", "filter_by_size")
    label(workspace_dir, shown, keep=True)
    assert workflow.run(wait=False).saved and len(exported(workspace_dir)) == 4
    WorkspaceStore(workspace_dir).journal.append("default", "filter", shown[1], None)  # undo
    summary = workflow.run(wait=False)
    assert summary.waiting == {"human_filter": 1}
    with WorkspaceStore(workspace_dir).db.connect() as conn:
        rows = read_rows(conn, "dogs", "set_caption", [shown[1]])
    assert rows[shown[1]][0].status == "pending"  # no longer kept below the human stage


def test_wait_mode_serves_the_app_and_continues_once_everything_is_labeled(
    photos, workspace_dir, monkeypatch
):
    served = []
    monkeypatch.setattr(
        "beprepared_dagster.labeling.launcher.ensure_serving", lambda workflows: served.append(workflows)
    )
    workflow = filter_workflow(photos, workspace_dir)
    workflow.run(wait=False)
    shown = kept_upstream(workspace_dir, "dogs", "filter_by_size")

    def person() -> None:
        deadline = time.monotonic() + 60
        while not served and time.monotonic() < deadline:  # a person labels once the app is up
            time.sleep(0.05)
        for key in shown:
            time.sleep(0.3)
            label(workspace_dir, [key], keep=key != shown[0])

    thread = threading.Thread(target=person)
    thread.start()
    summary = runner.run_workflow(workflow, poll_seconds=0.2)
    thread.join()
    assert served and summary.saved and summary.waiting == {}
    assert len(exported(workspace_dir)) == 3


def test_a_domain_is_shared_by_every_human_stage_of_it(photos, workspace_dir):
    one = filter_workflow(photos, workspace_dir, name="one", domain="dogs")
    one.run(wait=False)
    shown = kept_upstream(workspace_dir, "one", "filter_by_size")
    label(workspace_dir, shown, keep=True, domain="dogs")
    assert one.run(wait=False).saved
    two = Workflow(
        "two",
        Load(photos) >> FilterBySize(min_edge=512) >> HumanFilter(domain="dogs") >> Save("out2"),
        workspace=workspace_dir,
    )
    summary = two.run(wait=False)
    assert summary.waiting == {} and summary.saved  # nobody is asked twice
    other = filter_workflow(photos, workspace_dir, name="three", domain="cats")
    assert other.run(wait=False).waiting == {"human_filter": 4}


def test_skip_ui_passes_unlabeled_images_through(photos, workspace_dir):
    workflow = Workflow(
        "dogs",
        Load(photos) >> FilterBySize(min_edge=512) >> HumanFilter(skip_ui=True) >> Save,
        workspace=workspace_dir,
    )
    summary = workflow.run(wait=False)
    assert summary.saved and len(exported(workspace_dir)) == 4


def test_human_tag_keeps_upstream_tags_and_honours_reject_and_version(photos, workspace_dir):
    def tagged(version: int) -> Workflow:
        return Workflow(
            "dogs",
            Load(photos)
            >> FilterBySize(min_edge=512)
            >> Set(tags=["from_upstream", "poodle"])
            >> HumanTag(tags=[["labrador", "poodle"], ["outdoor"]], version=version)
            >> Save(sidecars=True),
            workspace=workspace_dir,
        )

    tagged(1).run(wait=False)
    shown = kept_upstream(workspace_dir, "dogs", "set")
    journal = WorkspaceStore(workspace_dir).journal
    journal.append(
        "default", "tag", shown[0], {"tags": ["labrador", "outdoor"], "rejected": False, "version": 1}
    )
    journal.append("default", "tag", shown[1], {"tags": [], "rejected": True, "version": 1})
    for key in shown[2:]:
        journal.append("default", "tag", key, {"tags": ["poodle"], "rejected": False, "version": 1})
    assert tagged(1).run(wait=False).saved
    with WorkspaceStore(workspace_dir).db.connect() as conn:
        rows = read_rows(conn, "dogs", "human_tag", shown)
    # Upstream tags outside the tag set stay; a tag of the set is decided by the person alone.
    assert rows[shown[0]][0].props["tags"] == ["from_upstream", "labrador", "outdoor"]
    assert rows[shown[1]][0].status == "rejected"
    assert rows[shown[2]][0].props["tags"] == ["from_upstream", "poodle"]
    assert len(exported(workspace_dir)) == 3
    # Bumping the version asks again for every image.
    assert tagged(2).run(wait=False).waiting == {"human_tag": 4}


def test_human_caption_falls_back_to_the_source_caption(photos, workspace_dir):
    workflow = Workflow(
        "dogs",
        Load(photos) >> FilterBySize(min_edge=512) >> SetCaption("a dog") >> HumanCaption() >> Save,
        workspace=workspace_dir,
    )
    workflow.run(wait=False)
    shown = kept_upstream(workspace_dir, "dogs", "set_caption")
    journal = WorkspaceStore(workspace_dir).journal
    journal.append("default", "caption", shown[0], {"caption": "  a brown dog on grass ", "version": 1})
    for key in shown[1:]:
        journal.append("default", "caption", key, {"caption": "", "version": 1})
    assert workflow.run(wait=False).saved
    captions = sorted(p.read_text() for p in (workspace_dir / "output").glob("*.txt"))
    assert captions == ["a brown dog on grass", "a dog", "a dog", "a dog"]


def test_label_sensor_requests_exactly_the_labeled_range_once(photos, workspace_dir):
    workflow = filter_workflow(photos, workspace_dir)
    workflow.run(wait=False)
    shown = kept_upstream(workspace_dir, "dogs", "filter_by_size")
    store = WorkspaceStore(workspace_dir)
    instance = open_instance(store)
    defs = build_definitions([workflow])
    sensor = defs.get_sensor_def("dogs_human_filter_labels")

    idle = sensor(dg.build_sensor_context(instance=instance, cursor=None))
    assert not idle.run_requests
    label(workspace_dir, shown[1:3], keep=True)
    result = sensor(dg.build_sensor_context(instance=instance, cursor=idle.cursor))
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    assert request.tags["dagster/asset_partition_range_start"] == shown[1]
    assert request.tags["dagster/asset_partition_range_end"] == shown[2]
    assert [k.to_user_string() for k in request.asset_selection] == [
        "dogs/human_filter",
        "dogs/set_caption",
        "dogs/save",  # the export follows the labels by itself
        "dogs/dataset_stats",
    ]
    # Unchanged state: the next tick requests nothing new.
    again = sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor))
    assert isinstance(again, dg.SkipReason) and "no new labels" in (again.skip_message or "")
    # Executing the request materializes exactly those partitions.
    assets = list(defs.assets)
    assert dg.materialize(
        assets, selection=request.asset_selection, instance=instance, tags=request.tags
    ).success
    assert materialized(workspace_dir, "dogs", "human_filter") >= set(shown[1:3])
    assert shown[0] not in materialized(workspace_dir, "dogs", "human_filter")
    assert plan(store, workflow, list(instance.get_dynamic_partitions("dogs_images"))).runs == []


def test_discovery_runs_stop_above_the_human_stage(photos, workspace_dir):
    workflow = filter_workflow(photos, workspace_dir)
    instance = open_instance(WorkspaceStore(workspace_dir))
    sensor = build_definitions([workflow]).get_sensor_def("dogs_discover_images")
    result = sensor(dg.build_sensor_context(instance=instance))
    assert [k.to_user_string() for k in result.run_requests[0].asset_selection] == [
        "dogs/load",
        "dogs/filter_by_size",
    ]


@pytest.mark.parametrize("bad", [dict(domain=""), dict(domain=3)])
def test_bad_domain_is_refused_at_load_time(bad):
    from beprepared_dagster.errors import WorkflowError

    with pytest.raises(WorkflowError, match="HumanFilter: domain"):
        HumanFilter(**bad)


def test_a_label_arriving_while_the_sensor_plans_is_not_lost(photos, workspace_dir, monkeypatch):
    """The sensor's cursor is the state it planned from: a click landing mid-plan (after the labels were read)
    must leave the cursor behind, or the next tick sees no change and the label is never applied."""
    from beprepared_dagster.store.labels import LabelJournal

    workflow = filter_workflow(photos, workspace_dir)
    workflow.run(wait=False)
    shown = kept_upstream(workspace_dir, "dogs", "filter_by_size")
    instance = open_instance(WorkspaceStore(workspace_dir))
    sensor = build_definitions([workflow]).get_sensor_def("dogs_human_filter_labels")
    original = LabelJournal.latest

    def latest_then_a_click(self, *args, **kwargs):
        found = original(self, *args, **kwargs)
        monkeypatch.setattr(LabelJournal, "latest", original)
        self.append("default", "filter", shown[0], {"keep": True})
        return found

    monkeypatch.setattr(LabelJournal, "latest", latest_then_a_click)
    first = sensor(dg.build_sensor_context(instance=instance, cursor=None))
    assert not first.run_requests  # planned before the click
    second = sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
    assert not isinstance(second, dg.SkipReason), second.skip_message
    assert [(r.tags["dagster/asset_partition_range_start"]) for r in second.run_requests] == [shown[0]]


def test_label_sensor_reruns_results_cleared_below_its_stage(photos, workspace_dir):
    """`beprepared db clear` re-marks stage rows without touching their timestamps; the sensor's token must
    still change, or a cleared stage below a human stage is never recomputed under dagster dev."""
    from beprepared_dagster.store import admin

    workflow = filter_workflow(photos, workspace_dir)
    workflow.run(wait=False)
    label(workspace_dir, kept_upstream(workspace_dir, "dogs", "filter_by_size"), keep=True)
    assert workflow.run(wait=False).saved
    store = WorkspaceStore(workspace_dir)
    instance = open_instance(store)
    sensor = build_definitions([workflow]).get_sensor_def("dogs_human_filter_labels")
    settled = sensor(dg.build_sensor_context(instance=instance, cursor=None))
    assert not settled.run_requests

    admin.clear(store, admin.list_computed(store, "SetCaption"), [])
    after = sensor(dg.build_sensor_context(instance=instance, cursor=settled.cursor))
    assert not isinstance(after, dg.SkipReason), after.skip_message
    assert [[k.to_user_string() for k in r.asset_selection] for r in after.run_requests] == [
        ["dogs/set_caption", "dogs/save", "dogs/dataset_stats"]
    ]


def test_an_exported_image_rejected_above_the_human_stage_leaves_the_export_while_others_wait(
    tmp_path, workspace_dir
):
    """Images rejected above a human stage wait to ride along with labeled ones while people still label; one
    that was kept below the human stage (exported) must not wait: its rows below stay "kept" and Save would
    export it until the last image is labeled."""
    import logging

    from beprepared_dagster.orchestration.export import kept_rows
    from beprepared_dagster_tests.conftest import make_image

    folder = tmp_path / "photos"
    for i, edge in enumerate([1000, 1000, 700]):
        make_image(folder / f"img_{i}.jpg", edge, edge, seed=i)

    def flow(min_edge: int) -> Workflow:
        return Workflow(
            "dogs",
            Load(folder) >> FilterBySize(min_edge=min_edge) >> HumanFilter() >> SetCaption("x") >> Save,
            workspace=workspace_dir,
        )

    flow(512).run(wait=False)
    a, b, c = kept_upstream(workspace_dir, "dogs", "filter_by_size")
    label(workspace_dir, [a, c], keep=True)  # b is left for later
    flow(512).run(wait=False)
    workflow = flow(800)  # c is now too small
    assert workflow.run(wait=False).waiting == {"human_filter": 1}
    store = WorkspaceStore(workspace_dir)
    exported_now = {
        r.image_id for r in kept_rows(store, workflow, workflow.stage("save"), logging.getLogger())
    }
    assert exported_now == {a}
