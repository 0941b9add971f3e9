"""The `<workflow>/dataset_stats` asset and the Save layouts in headless runs on a real Dagster instance
(SQLite in the workspace) and real DuckDB files.

Does not cover the statistics' numbers in detail (export/test_stats.py) or `dagster dev` (e2e/).
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import dagster as dg
import pytest
from PIL import Image

from beprepared_dagster import Load, Save, SaveImageFolder, SaveKohya, SetCaption, Workflow
from beprepared_dagster.errors import RunFailed
from beprepared_dagster.orchestration.defs import build_definitions
from beprepared_dagster.orchestration.instance import open_instance
from beprepared_dagster.orchestration.stats import build_stats_asset
from beprepared_dagster.store import WorkspaceStore

STATS_KEY = ["dogs", "dataset_stats"]


def materialize_stats(workflow: Workflow, workspace: Path) -> dg.ExecuteInProcessResult:
    defs = build_definitions([workflow])
    instance = open_instance(WorkspaceStore(workspace))
    return dg.materialize(
        list(defs.assets or []), selection=[dg.AssetKey(STATS_KEY)], instance=instance, raise_on_error=False
    )


def latest_meta(workspace: Path) -> dict:
    instance = open_instance(WorkspaceStore(workspace))
    event = instance.get_latest_materialization_event(dg.AssetKey(STATS_KEY))
    assert event is not None
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_stats_asset_shows_the_exported_dataset(photos, workspace_dir):
    workflow = Workflow(
        "dogs", Load(photos) >> SetCaption("a photo of a cat") >> Save, workspace=workspace_dir
    )
    workflow.run()
    report = workspace_dir / "output" / "dataset_stats.html"
    assert report.is_file()  # the headless run writes the HTML report with the export
    assert materialize_stats(workflow, workspace_dir).success
    meta = latest_meta(workspace_dir)
    assert (meta["images"], meta["image_files"], meta["captions"], meta["uncaptioned_files"]) == (6, 6, 6, 0)
    assert meta["clip_tokens_median"] == 5 and meta["clip_tokens_max"] == 5  # CLIP tokens, not words
    assert meta["caption_words_median"] == 5
    assert meta["captions_over_75_clip_tokens"] == 0
    assert "bpe_simple_vocab_16e6" in meta["tokenizer"]
    # photos: four 768×576 (4:3) and two 320×200 (16:10); all smaller than their SDXL bucket.
    assert meta["sdxl_buckets"]["1152x896"] == 4 and meta["sdxl_buckets"]["1216x832"] == 2
    assert meta["sdxl_upscaled"] == 6
    assert meta["report"] == str(report)
    match = re.fullmatch(r"!\[dataset statistics\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", meta["chart"])
    assert match, meta["chart"][:80]
    assert Image.open(io.BytesIO(base64.b64decode(match.group(1)))).format == "PNG"


def test_stats_asset_depends_on_save_and_sits_in_the_workflow_group(photos, workspace_dir):
    workflow = Workflow("dogs", Load(photos) >> Save, workspace=workspace_dir)
    asset = build_stats_asset(workflow)
    assert asset is not None and asset.key == dg.AssetKey(STATS_KEY)
    [spec] = asset.specs
    assert [d.asset_key for d in spec.deps] == [dg.AssetKey(["dogs", "save"])]
    assert spec.group_name == "dogs" and not asset.partitions_def
    keys = {a.key for a in build_definitions([workflow]).assets or []}
    assert dg.AssetKey(STATS_KEY) in keys


def test_no_stats_asset_without_a_save_that_writes_statistics(photos, workspace_dir):
    assert build_stats_asset(Workflow("a", Load(photos) >> SetCaption("x"), workspace=workspace_dir)) is None
    assert (
        build_stats_asset(Workflow("b", Load(photos) >> Save(stats=False), workspace=workspace_dir)) is None
    )


def test_stats_before_the_first_export_fails_naming_the_save_stage(photos, workspace_dir):
    workflow = Workflow("dogs", Load(photos) >> Save, workspace=workspace_dir)
    result = materialize_stats(workflow, workspace_dir)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "materialize dogs/save first" in str(failure.event_specific_data)


def test_three_layouts_from_one_workflow(photos, workspace_dir):
    captioned = Load(photos) >> SetCaption("a photo of a dog")
    captioned >> Save
    captioned >> SaveKohya(repeats=4, trigger="ohwx", dataset_toml=True)
    captioned >> SaveImageFolder(properties=["width", "height"])
    workflow = Workflow("dogs", captioned, workspace=workspace_dir)
    workflow.run()
    kohya = workspace_dir / "output_kohya"
    assert len(list((kohya / "4_ohwx").glob("*.jpg"))) == 6
    assert {p.read_text() for p in (kohya / "4_ohwx").glob("*.txt")} == {"ohwx, a photo of a dog"}
    assert (kohya / "dataset.toml").is_file()
    assert (
        len((workspace_dir / "output_imagefolder" / "train" / "metadata.jsonl").read_text().splitlines()) == 6
    )
    assert materialize_stats(workflow, workspace_dir).success
    meta = latest_meta(workspace_dir)
    assert meta["save.images"] == meta["save_kohya.images"] == meta["save_image_folder.images"] == 6
    assert meta["save.clip_tokens_median"] == 5 and meta["save_kohya.clip_tokens_median"] == 7  # "ohwx, " + 5
    assert meta["save_kohya.report"] == str(kohya / "dataset_stats.html")
    # A re-run with nothing changed rewrites no export.
    before = {p: p.stat().st_mtime_ns for p in workspace_dir.glob("output*/**/*") if p.is_file()}
    workflow.run()
    assert {p: p.stat().st_mtime_ns for p in workspace_dir.glob("output*/**/*") if p.is_file()} == before


def test_two_saves_into_one_folder_are_refused(photos, workspace_dir):
    loaded = Load(photos)
    loaded >> Save("out")
    loaded >> SaveKohya("out/kohya")
    workflow = Workflow("dogs", loaded, workspace=workspace_dir)
    with pytest.raises(RunFailed, match="give each Save its own dir"):
        workflow.run()
    assert not (workspace_dir / "out").exists()


def test_an_export_inside_a_load_folder_is_refused(photos, workspace_dir):
    workflow = Workflow("dogs", Load(photos) >> Save(photos / "export"), workspace=workspace_dir)
    with pytest.raises(RunFailed, match="overlaps the Load folder"):
        workflow.run()
    assert not (photos / "export").exists()
