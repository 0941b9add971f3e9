"""Headless runs on a real Dagster instance (SQLite, persisted in the workspace) and real DuckDB files:
caching, parameter changes, incremental discovery, bad input, failures.

Does not cover `dagster dev`, the daemon or sensors ticking on their own (see e2e/)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest

from beprepared_dagster import Concat, ConvertFormat, FilterBySize, Load, Save, SetCaption, Workflow
from beprepared_dagster.errors import RunFailed
from beprepared_dagster.nodes.base import PropertyNode
from beprepared_dagster.orchestration.instance import open_instance
from beprepared_dagster.orchestration.partitions import partitions_name, range_tags
from beprepared_dagster.store import WorkspaceStore
from beprepared_dagster_tests.conftest import GOOD_FIXTURES, make_images


def seed_workflow(photos: Path, ws: Path, caption: str = "ohwx dog", min_edge: int = 512) -> Workflow:
    return Workflow(
        "dogs",
        Load(photos)
        >> FilterBySize(min_edge=min_edge)
        >> ConvertFormat("JPEG")
        >> SetCaption(caption)
        >> Save,
        workspace=ws,
    )


def latest_meta(instance: dg.DagsterInstance, workflow: str, stage: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey([workflow, stage]))
    assert event is not None, f"{workflow}/{stage} was never materialized"
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def event_count(instance: dg.DagsterInstance, workflow: str, stage: str) -> int:
    return len(instance.fetch_materializations(dg.AssetKey([workflow, stage]), limit=10_000).records)


def materialized(instance: dg.DagsterInstance, workflow: str, stage: str) -> set[str]:
    return set(instance.get_materialized_partitions(dg.AssetKey([workflow, stage])))


def test_seed_workflow_exports_and_persists_dagster_home(photos, workspace_dir):
    summary = seed_workflow(photos, workspace_dir).run()
    assert summary.new_images == 6 and len(summary.runs) == 1 and summary.saved
    # No human stage: the stages and the Save are one Dagster run (its start and end bookkeeping once).
    assert len(summary.run_ids) == 1
    output = workspace_dir / "output"
    images = sorted(p.name for p in output.glob("*.jpg"))
    assert len(images) == 4 and all(n.startswith("big_") for n in images)
    assert all((output / n).with_suffix(".txt").read_text() == "ohwx dog" for n in images)
    assert (output / "index.html").is_file()
    config = (workspace_dir / "dagster_home" / "dagster.yaml").read_text()
    assert "max_concurrent_runs: 1" in config and "enabled: false" in config
    instance = open_instance(WorkspaceStore(workspace_dir))
    assert len(instance.get_dynamic_partitions("dogs_images")) == 6
    for stage in ("load", "filter_by_size", "convert_format", "set_caption"):
        assert len(materialized(instance, "dogs", stage)) == 6
    save = instance.get_latest_materialization_event(dg.AssetKey(["dogs", "save"]))
    assert save is not None and save.run_id == summary.run_ids[0]
    meta = latest_meta(instance, "dogs", "filter_by_size")
    assert (meta["kept"], meta["rejected"], meta["rejected_by_reason"]) == (4, 2, {"too small": 2})
    assert "big_" in meta["preview"]


def test_new_files_are_hashed_ahead_only_while_the_instance_modules_still_load(
    photos, workspace_dir, monkeypatch
):
    from beprepared_dagster import workflow as workflow_module
    from beprepared_dagster.orchestration import discovery

    made: list = []
    original = discovery.PreScan.__init__
    monkeypatch.setattr(discovery.PreScan, "__init__", lambda self, *a: made.append(1) or original(self, *a))
    with monkeypatch.context() as fresh:  # as in a fresh process
        fresh.setattr(workflow_module, "_instance_modules_loaded", lambda: False)
        first = seed_workflow(photos, workspace_dir).run()
    assert made == [1] and first.new_images == 6  # the pre-scan ran beside the instance's imports
    make_images(photos, 2, 700, 600, start=50)
    second = seed_workflow(photos, workspace_dir).run()  # those modules are loaded now (a warm runner too)
    assert made == [1] and second.new_images == 2  # discovery alone: the folder is walked once


def test_rerun_of_unchanged_workflow_recomputes_nothing(photos, workspace_dir):
    workflow = seed_workflow(photos, workspace_dir)
    workflow.run()
    before = {p.name: p.stat().st_mtime_ns for p in (workspace_dir / "output").iterdir()}
    second = workflow.run()
    assert second.new_images == 0 and second.runs == []  # nothing stale: no stage run at all
    assert {p.name: p.stat().st_mtime_ns for p in (workspace_dir / "output").iterdir()} == before
    # Materializing every stage again over every image (the UI's "Materialize all") is all cache hits.
    instance = open_instance(WorkspaceStore(workspace_dir))
    keys = instance.get_dynamic_partitions("dogs_images")
    from beprepared_dagster.orchestration.defs import build_definitions

    assets = list(build_definitions([workflow]).assets)
    partitioned = [a for a in assets if a.partitions_def is not None]
    assert dg.materialize(partitioned, instance=instance, tags=range_tags(keys[0], keys[-1])).success
    for stage in ("load", "filter_by_size", "convert_format", "set_caption"):
        meta = latest_meta(instance, "dogs", stage)
        assert meta["computed"] == 0, stage
        assert meta["changed"] == 0, stage
    assert latest_meta(instance, "dogs", "load")["cache_hits"] == 6


def test_a_rerun_that_changed_nothing_starts_no_dagster_run_unless_the_export_was_touched(
    photos, workspace_dir
):
    workflow = seed_workflow(photos, workspace_dir)
    workflow.run()
    instance = open_instance(WorkspaceStore(workspace_dir))
    runs, saves = len(instance.get_run_records()), event_count(instance, "dogs", "save")
    second = workflow.run()
    assert second.saved and second.run_ids == []  # the export is current: nothing for Dagster to record
    assert len(instance.get_run_records()) == runs and event_count(instance, "dogs", "save") == saves

    caption = next((workspace_dir / "output").glob("*.txt"))
    caption.write_text("edited by hand")
    third = workflow.run()
    assert len(third.run_ids) == 1 and event_count(instance, "dogs", "save") == saves + 1
    assert caption.read_text() == "ohwx dog"  # the Save ran and rewrote what was touched


def test_changed_parameter_recomputes_only_that_stage_and_keeps_old_results(photos, workspace_dir):
    seed_workflow(photos, workspace_dir, caption="ohwx dog").run()
    instance = open_instance(WorkspaceStore(workspace_dir))
    before = {
        s: event_count(instance, "dogs", s)
        for s in ("load", "filter_by_size", "convert_format", "set_caption")
    }
    summary = seed_workflow(photos, workspace_dir, caption="ohwx puppy").run()
    assert [r.stages for r in summary.runs] == [["set_caption"]]
    after = {s: event_count(instance, "dogs", s) for s in before}
    assert {s: after[s] - before[s] for s in before} == {
        "load": 0,
        "filter_by_size": 0,
        "convert_format": 0,
        "set_caption": 6,
    }
    assert latest_meta(instance, "dogs", "set_caption")["computed"] == 1  # one distinct input: no props read
    captions = {p.read_text() for p in (workspace_dir / "output").glob("*.txt")}
    assert captions == {"ohwx puppy"}
    # Switching back is free: the old result is still in the cache.
    seed_workflow(photos, workspace_dir, caption="ohwx dog").run()
    assert latest_meta(instance, "dogs", "set_caption")["computed"] == 0
    assert {p.read_text() for p in (workspace_dir / "output").glob("*.txt")} == {"ohwx dog"}


def test_tightening_a_filter_recomputes_the_filter_and_drops_images_downstream(photos, workspace_dir):
    seed_workflow(photos, workspace_dir, min_edge=100).run()
    assert len(list((workspace_dir / "output").glob("*.jpg"))) == 6
    summary = seed_workflow(photos, workspace_dir, min_edge=512).run()
    assert [r.stages for r in summary.runs] == [["filter_by_size", "convert_format", "set_caption"]]
    instance = open_instance(WorkspaceStore(workspace_dir))
    assert latest_meta(instance, "dogs", "convert_format")["computed"] == 0  # kept images: cache hits
    assert len(list((workspace_dir / "output").glob("*.jpg"))) == 4


@pytest.mark.slow
def test_adding_ten_images_to_a_thousand_processes_exactly_those_ten(tmp_path, workspace_dir):
    folder = tmp_path / "many"
    make_images(folder, 1000)
    workflow = Workflow("many", Load(folder) >> SetCaption("x") >> Save, workspace=workspace_dir)
    first = workflow.run()
    assert first.new_images == 1000 and len(first.runs) == 1
    make_images(folder, 10, start=1000)
    second = workflow.run()
    assert second.new_images == 10
    assert len(second.runs) == 1 and second.runs[0].stages == ["load", "set_caption"]
    instance = open_instance(WorkspaceStore(workspace_dir))
    keys = instance.get_dynamic_partitions("many_images")
    assert (second.runs[0].first, second.runs[0].last) == (keys[1000], keys[-1])
    load = latest_meta(instance, "many", "load")
    assert (load["images"], load["computed"], load["cache_hits"]) == (10, 10, 0)
    assert len(list((workspace_dir / "output").glob("*.jpg"))) == 1010


def test_bad_input_folder_logs_each_file_and_processes_every_good_image(fixture_folder, workspace_dir):
    (fixture_folder / "nested").mkdir()
    os.symlink(fixture_folder, fixture_folder / "nested" / "loop")  # a directory symlink loop
    os.symlink("self.jpg", fixture_folder / "self.jpg")  # a file symlink loop
    (fixture_folder / "notes.txt").write_text("not an image and not an image extension")
    workflow = Workflow("bad", Load(fixture_folder) >> ConvertFormat("PNG") >> Save, workspace=workspace_dir)
    summary = workflow.run()
    instance = open_instance(WorkspaceStore(workspace_dir))
    load = latest_meta(instance, "bad", "load")
    assert load["rejected_by_reason"] == {"bad image": 4}
    assert load["unreadable_files"]["count"] == 2  # the two loops, by path
    assert load["kept"] == len(GOOD_FIXTURES)
    logs = "\n".join(e.message for run_id in summary.run_ids for e in instance.all_logs(run_id) if e.message)
    for name, reason in [
        ("zero-bytes.jpg", "empty file"),
        ("truncated.jpg", "truncated"),
        ("text-file.jpg", "not an image"),
        ("bomb.png", "decompression bomb"),
        ("self.jpg", "loop"),
    ]:
        line = next((ln for ln in logs.splitlines() if name in ln), "")
        assert reason in line, f"no clear log line for {name}: {line!r}"
    exported = list((workspace_dir / "output").glob("*.png"))
    assert len(exported) == len(GOOD_FIXTURES)
    assert any(p.name.startswith("ünïcode-名前.png_") for p in exported)
    assert any(p.name.startswith("UPPER-CASE.JPG_") for p in exported)


def test_missing_load_folder_fails_naming_it(tmp_path, workspace_dir):
    workflow = Workflow("missing", Load(tmp_path / "nope") >> Save, workspace=workspace_dir)
    with pytest.raises(RunFailed, match=r"folder .*nope does not exist"):
        workflow.run()


def test_an_empty_load_folder_warns_naming_it(tmp_path, workspace_dir, caplog):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    workflow = Workflow("empty", Load(tmp_path / "empty") >> Save, workspace=workspace_dir)
    with caplog.at_level(logging.WARNING, logger="beprepared"):
        summary = workflow.run()
    assert summary.images == 0 and summary.saved
    assert f"no images found in {tmp_path / 'empty'}" in caplog.text


class Explodes(PropertyNode):
    def __init__(self) -> None:
        pass

    def compute(self, image):
        if "small" in image.original_path:
            raise RuntimeError("boom")
        return {"ok": True}


def test_unexpected_node_error_fails_the_run_but_keeps_good_results(photos, workspace_dir):
    workflow = Workflow("boom", Load(photos) >> Explodes() >> Save, workspace=workspace_dir)
    with pytest.raises(RunFailed, match="explodes: 2 image"):
        workflow.run()
    store = WorkspaceStore(workspace_dir)
    with store.db.connect() as conn:
        statuses = dict(
            conn.execute(
                "SELECT status, count(*) FROM stage_rows WHERE stage = 'explodes' GROUP BY status"
            ).fetchall()
        )
    assert statuses == {"kept": 4, "error": 2}


def _script(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "flow.py"
    script.write_text(textwrap.dedent(body))
    return script


@pytest.mark.slow
def test_script_and_cli_exit_codes(tmp_path, photos):
    ws = tmp_path / "ws"
    good = _script(
        tmp_path,
        f"""
        from beprepared_dagster import *
        with Workspace({str(ws)!r}, name="cli") as workspace:
            Load({str(photos)!r}) >> FilterBySize(min_edge=512) >> Save
            workspace.run()
    """,
    )
    done = subprocess.run([sys.executable, str(good)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(list((ws / "output").glob("*.jpg"))) == 4
    beprepared = shutil.which("beprepared", path=os.path.dirname(sys.executable))
    again = subprocess.run([beprepared, "run", str(good)], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "0 new image(s), 0 stage run(s)" in again.stdout
    bad = _script(
        tmp_path,
        f"""
        from beprepared_dagster import *
        with Workspace({str(ws)!r}, name="cli") as workspace:
            Load({str(tmp_path / "absent")!r}) >> Save
            workspace.run()
    """,
    )
    failed = subprocess.run([sys.executable, str(bad)], capture_output=True, text=True, timeout=300)
    assert failed.returncode != 0 and "does not exist" in failed.stderr
    failed_cli = subprocess.run([beprepared, "run", str(bad)], capture_output=True, text=True, timeout=300)
    assert (
        failed_cli.returncode == 1 and "error:" in failed_cli.stderr and "does not exist" in failed_cli.stderr
    )


def test_partitions_use_one_definition_per_workflow(photos, workspace_dir):
    workflow = seed_workflow(photos, workspace_dir)
    assert partitions_name(workflow) == "dogs_images"


def test_cached_conversion_still_converts_and_extension_follows_format(photos, workspace_dir):
    from PIL import Image

    workflow = Workflow("png", Load(photos) >> ConvertFormat("PNG") >> Save, workspace=workspace_dir)
    workflow.run()
    shutil.rmtree(workspace_dir / "output")  # force Save to write again from the cache
    workflow.run()
    exported = sorted((workspace_dir / "output").glob("*.png"))
    assert len(exported) == 6 and not list((workspace_dir / "output").glob("*.jpg"))
    for path in exported:
        assert path.name.rsplit("_", 1)[0].endswith(".jpg")  # named after the source file
        with Image.open(path) as image:
            assert image.format == "PNG"


def test_file_whose_content_changed_is_a_new_image_and_the_old_version_leaves_the_export(
    photos, workspace_dir
):
    from beprepared_dagster_tests.conftest import make_image

    workflow = Workflow("edit", Load(photos) >> Save, workspace=workspace_dir)
    workflow.run()
    old = next((workspace_dir / "output").glob("big_0.jpg_*.jpg")).name
    make_image(photos / "big_0.jpg", 800, 600, seed=999)  # edited in place, same name
    summary = workflow.run()
    assert summary.new_images == 1
    names = [p.name for p in (workspace_dir / "output").glob("big_0.jpg_*.jpg")]
    assert len(names) == 1 and names[0] != old


def test_concat_settles_when_a_branch_changes_only_an_image_another_branch_keeps(photos, workspace_dir):
    """The second branch rejects the small images under both settings, with another reason; the first keeps
    them, so Concat's rows come out identical. That must not leave Concat stale forever."""

    def branches(edge: int) -> Workflow:
        base = Load(photos)
        merged = Concat() << (base >> FilterBySize(min_edge=100)) << (base >> FilterBySize(min_edge=edge))
        return Workflow("dogs", merged >> SetCaption("x") >> Save, workspace=workspace_dir)

    branches(512).run()
    summary = branches(600).run()  # raised RunFailed("planning did not settle") before the fix
    assert summary.saved
    assert branches(600).run().runs == []


@pytest.mark.parametrize(("set_stage", "plans"), [(False, 1), (True, 2)])
def test_a_chain_of_per_image_stages_is_planned_once_a_set_stage_is_checked_again(
    photos, workspace_dir, monkeypatch, set_stage, plans
):
    """Planning reads every stage's rows: a chain of per-image stages settles in one round and skips the
    re-check; a set-level stage can change decisions below it when it runs, so its workflow plans again."""
    from beprepared_dagster import Take
    from beprepared_dagster.orchestration import runner

    calls: list[int] = []
    real = runner.plan
    monkeypatch.setattr(runner, "plan", lambda *a, **k: calls.append(1) or real(*a, **k))
    chain = Load(photos) >> FilterBySize(min_edge=512)
    chain = chain >> Take(3) if set_stage else chain
    workflow = Workflow("dogs", chain >> SetCaption("x") >> Save, workspace=workspace_dir)
    summary = workflow.run()
    assert summary.saved and len(summary.runs) == 1 and len(calls) == plans
    assert len(list((workspace_dir / "output").glob("*.txt"))) == (3 if set_stage else 4)
    calls.clear()
    assert workflow.run().runs == [] and len(calls) == 1  # settled: nothing stale on the next run


def test_a_discovery_that_fails_registering_partitions_finds_the_same_images_new_next_time(
    photos, workspace_dir, monkeypatch
):
    """The file index is written in the transaction that registers the new partitions: when Dagster fails
    there, the index stays as it was, so the next run finds the files new again instead of never."""
    workflow = seed_workflow(photos, workspace_dir)

    def broken(self, name, keys):
        raise OSError("disk full while adding partitions")

    with monkeypatch.context() as patch:
        patch.setattr(dg.DagsterInstance, "add_dynamic_partitions", broken)
        with pytest.raises(RunFailed, match="disk full"):
            workflow.run()
    with WorkspaceStore(workspace_dir).db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM files").fetchone()[0] == 0
    summary = workflow.run()
    assert summary.new_images == summary.images == len(list(photos.iterdir()))
    control = seed_workflow(photos, workspace_dir.parent / "control")
    control.run()
    exported = sorted(p.name for p in (workspace_dir / "output").glob("*.jpg"))
    assert exported and exported == sorted(
        p.name for p in (workspace_dir.parent / "control/output").glob("*.jpg")
    )
