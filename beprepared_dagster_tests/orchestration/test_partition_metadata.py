"""What Dagster's pages show per stage: each partition's materialization carries its own image's small
metadata (file, size, status, reason), the run's summary sits on the asset's latest materialization only,
the preview says how many rows it leaves out, and the log line reads right. Real Dagster instance, real DuckDB.

Also guards the Dagster internals `partition_metadata.py` relies on (the fast path must be taken).
Does not cover the UI's rendering (e2e/)."""

from __future__ import annotations

import dagster as dg
import pytest

from beprepared_dagster import FilterBySize, Load, Save, SetCaption, Workflow
from beprepared_dagster.orchestration import metadata, partition_metadata
from beprepared_dagster.orchestration.instance import open_instance
from beprepared_dagster.store import WorkspaceStore
from beprepared_dagster_tests.conftest import make_image

SUMMARY_KEYS = {"images", "kept", "rejected", "cache_hits", "computed", "preview", "seconds"}


def events(instance, stage: str) -> list[dg.AssetMaterialization]:
    records = instance.fetch_materializations(dg.AssetKey(["dogs", stage]), limit=1000).records
    return [r.asset_materialization for r in records]


@pytest.fixture
def ran(photos, workspace_dir, monkeypatch):
    used = []
    real = partition_metadata.add_partition_metadata
    monkeypatch.setattr(
        partition_metadata, "add_partition_metadata", lambda *a: used.append(real(*a)) or used[-1]
    )
    from beprepared_dagster.orchestration import assets

    monkeypatch.setattr(assets, "add_partition_metadata", partition_metadata.add_partition_metadata)
    Workflow(
        "dogs",
        Load(photos) >> FilterBySize(min_edge=512) >> SetCaption("ohwx") >> Save,
        workspace=workspace_dir,
    ).run()
    return open_instance(WorkspaceStore(workspace_dir)), used


def test_each_partition_carries_its_own_image_and_only_the_latest_the_summary(ran):
    instance, used = ran
    assert used and all(used), "the fast path into Dagster's metadata accumulator was not taken"
    materializations = events(instance, "filter_by_size")
    assert len(materializations) == 6
    by_file = {m.metadata["file"].value: m.metadata for m in materializations}
    assert set(by_file) == {f"big_{i}.jpg" for i in range(4)} | {f"small_{i}.jpg" for i in range(2)}
    small = by_file["small_0.jpg"]
    assert small["status"].value == "rejected" and small["size"].value == "320×200"
    assert small["reason"].value.startswith("too small")
    assert by_file["big_1.jpg"]["status"].value == "kept"
    with_summary = [m for m in materializations if set(m.metadata) >= SUMMARY_KEYS]
    assert len(with_summary) == 1, "the run summary must not be copied onto every partition"
    latest = instance.get_latest_materialization_event(dg.AssetKey(["dogs", "filter_by_size"]))
    assert set(latest.asset_materialization.metadata) >= SUMMARY_KEYS


def test_the_preview_says_how_many_kept_images_it_leaves_out(tmp_path, workspace_dir):
    folder = tmp_path / "many"
    for i in range(9):
        make_image(folder / f"p{i}.jpg", 64, 48, seed=i)
    Workflow("dogs", Load(folder) >> SetCaption("x") >> Save, workspace=workspace_dir).run()
    latest = open_instance(WorkspaceStore(workspace_dir)).get_latest_materialization_event(
        dg.AssetKey(["dogs", "set_caption"])
    )
    assert "3 more kept image(s) not shown" in latest.asset_materialization.metadata["preview"].value


def test_the_log_line_has_no_stray_space_and_explains_shared_inputs(photos, workspace_dir):
    import logging

    from beprepared_dagster.orchestration.discovery import discover
    from beprepared_dagster.orchestration.executor import StageExecutor

    workflow = Workflow("dogs", Load(photos) >> SetCaption("ohwx") >> Save, workspace=workspace_dir)
    store, log = WorkspaceStore(workspace_dir), logging.getLogger("t")
    keys = discover(store, workflow, set(), log).new_keys
    executor = StageExecutor(store, workflow, log)
    executor.run(workflow.stages[0], keys)
    line = metadata.summary_line(executor.run(workflow.stages[1], keys))
    assert " ," not in line
    assert (
        "set_caption: 6 image(s): 6 kept, 0 rejected here, 0 rejected upstream; outcomes: 0 from cache, 1 computed"
        in line
    )
    assert "(for 6 images: identical inputs are computed once)" in line


def test_a_thumbnail_is_made_once_per_object_in_a_process(tmp_path, monkeypatch):
    """A run's stages preview the same images one after the other: each object is decoded once."""
    from beprepared_dagster.store.objects import ObjectStore

    objects = ObjectStore(tmp_path / "objects")
    object_id = objects.put_file(make_image(tmp_path / "a.jpg", 640, 480, seed=1))
    opened: list[str] = []
    real = ObjectStore.path
    monkeypatch.setattr(ObjectStore, "path", lambda self, oid: opened.append(oid) or real(self, oid))
    monkeypatch.setattr(metadata, "_THUMBNAILS", type(metadata._THUMBNAILS)())
    first = metadata.thumbnail_markdown(objects, object_id)
    assert first is not None and first.startswith("![thumbnail](data:image/jpeg;base64,")
    assert metadata.thumbnail_markdown(objects, object_id) == first
    assert opened == [object_id]
    assert metadata.thumbnail_markdown(objects, "0" * 64) is None  # unknown: not kept, asked again
    assert metadata.thumbnail_markdown(objects, "0" * 64) is None and opened.count("0" * 64) == 2
