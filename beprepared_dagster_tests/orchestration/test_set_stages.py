"""Set-level stages through the executor and the headless runner: the node sees every kept upstream image in
insertion order whatever range a run covers, re-decides when upstream changes, caches per-image features,
and only images whose decision changed go stale below it; a failing decision fails the run with its message.

Uses small test-only set nodes; the catalog's Take/Sorted/dedupe nodes have their own tests in nodes/."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from beprepared_dagster import FilterBySize, Load, SetCaption, Workflow
from beprepared_dagster.errors import RunFailed
from beprepared_dagster.nodes.base import Image, NodeContext, Outcome, SetNode
from beprepared_dagster.store import WorkspaceStore
from beprepared_dagster.store.stages import read_rows
from beprepared_dagster_tests.conftest import make_images

CALLS: list[int] = []


class FirstN(SetNode):
    """Keeps the first {n} images in insertion order."""

    def __init__(self, n: int = 2) -> None:
        pass

    def decide(self, images: list[Image], ctx: NodeContext) -> list[Outcome]:
        CALLS.append(len(images))
        return [
            Outcome.keep(rank=i) if i < self.params["n"] else Outcome.reject("not in the first n")
            for i in range(len(images))
        ]


class WidestFirst(SetNode):
    """Keeps the widest image; the width comes from a cached 'feature'."""

    def __init__(self) -> None:
        pass

    def features_key(self) -> str:
        return "width:v1"

    def features(self, images: list[Image], ctx: NodeContext) -> list[dict]:
        CALLS.append(-len(images))
        return [{"feature_width": image["width"]} for image in images]

    def decide(self, images: list[Image], ctx: NodeContext) -> list[Outcome]:
        widest = max(images, key=lambda i: i["feature_width"])["image_id"]
        return [Outcome.keep() if i["image_id"] == widest else Outcome.reject("narrower") for i in images]


class FlakyFeature(SetNode):
    """Keeps every image; its feature fails unexpectedly for images wider than 70 while FLAKY is set."""

    def __init__(self) -> None:
        pass

    def features_key(self) -> str:
        return "flaky:v1"

    def features(self, images: list[Image], ctx: NodeContext) -> list[dict]:
        if FLAKY and any(image["width"] > 70 for image in images):
            raise OSError("disk hiccup")
        return [{"feature_width": image["width"]} for image in images]

    def decide(self, images: list[Image], ctx: NodeContext) -> list[Outcome]:
        return [Outcome.keep() for _ in images]


FLAKY = False


class Broken(SetNode):
    def __init__(self) -> None:
        pass

    def decide(self, images: list[Image], ctx: NodeContext) -> list[Outcome]:
        raise ZeroDivisionError("no luck")


def rows(ws: Path, stage: str) -> dict:
    with WorkspaceStore(ws).db.connect() as conn:
        return read_rows(conn, "sets", stage)


def test_set_stage_sees_all_images_and_redecides_when_images_arrive(tmp_path, workspace_dir):
    folder = tmp_path / "in"
    make_images(folder, 3, width=64, height=48)
    CALLS.clear()
    workflow = Workflow("sets", Load(folder) >> FirstN(n=2) >> SetCaption("x"), workspace=workspace_dir)
    workflow.run()
    assert CALLS == [3]
    first = rows(workspace_dir, "first_n")
    assert sorted(r[0].status for r in first.values()) == ["kept", "kept", "rejected"]
    captioned = rows(workspace_dir, "set_caption")
    stamps = {k: v[0].updated_at for k, v in captioned.items()}

    make_images(folder, 2, width=64, height=48, start=10)
    summary = workflow.run()
    assert CALLS == [3, 5]  # re-decided over all five
    after = rows(workspace_dir, "first_n")
    assert sum(r[0].status == "kept" for r in after.values()) == 2
    # The first two images keep their decision, so nothing below them was rewritten.
    unchanged = [k for k in stamps if rows(workspace_dir, "set_caption")[k][0].updated_at == stamps[k]]
    assert len(unchanged) == 3 and summary.new_images == 2

    assert workflow.run().runs == []  # settled
    assert CALLS == [3, 5]


def test_features_are_cached_per_object(tmp_path, workspace_dir):
    folder = tmp_path / "in"
    make_images(folder, 3, width=64, height=48)
    make_images(folder, 1, width=80, height=48, start=20)
    CALLS.clear()
    workflow = Workflow("sets", Load(folder) >> WidestFirst(), workspace=workspace_dir)
    workflow.run()
    assert CALLS == [-4]
    make_images(folder, 1, width=96, height=48, start=30)
    workflow.run()
    assert CALLS == [-4, -1]  # only the new image's feature is computed
    kept = [
        r[0].props["width"] for r in rows(workspace_dir, "widest_first").values() if r[0].status == "kept"
    ]
    assert kept == [96]


def test_a_failing_decision_fails_the_run_with_its_message(tmp_path, workspace_dir):
    folder = tmp_path / "in"
    make_images(folder, 2)
    workflow = Workflow("sets", Load(folder) >> FilterBySize(min_edge=1) >> Broken(), workspace=workspace_dir)
    with pytest.raises(RunFailed, match="Broken failed: ZeroDivisionError: no luck"):
        workflow.run()
    assert len(rows(workspace_dir, "filter_by_size")) == 2  # what ran before is kept


def test_an_unexpected_feature_error_fails_the_run_and_is_retried_not_rejected(
    tmp_path, workspace_dir, monkeypatch
):
    """An unexpected error computing a feature (not a bad image) is not cached; the image must not be stored as
    rejected either (a success with the image silently dropped, never retried): it fails the run and the next
    run computes it."""
    folder = tmp_path / "in"
    make_images(folder, 2, width=64, height=48)
    make_images(folder, 1, width=96, height=48, start=20)
    workflow = Workflow("sets", Load(folder) >> FlakyFeature(), workspace=workspace_dir)
    monkeypatch.setattr(f"{__name__}.FLAKY", True)
    with pytest.raises(RunFailed):
        workflow.run()
    statuses = {r[0].props.get("width"): r[0].status for r in rows(workspace_dir, "flaky_feature").values()}
    assert statuses == {64: "kept", 96: "error"}
    monkeypatch.setattr(f"{__name__}.FLAKY", False)
    workflow.run()
    assert all(r[0].status == "kept" for r in rows(workspace_dir, "flaky_feature").values())


class CountingKeys(list):
    iterations = 0

    def __iter__(self):
        CountingKeys.iterations += 1
        return super().__iter__()


def test_a_set_stage_checks_its_range_in_linear_time(tmp_path, workspace_dir):
    """The range check used to rebuild set(keys) once per upstream image: O(N²), hours at 100k images."""
    from beprepared_dagster.orchestration.executor import StageExecutor
    from beprepared_dagster.orchestration.instance import open_instance

    folder = tmp_path / "in"
    make_images(folder, 30)
    workflow = Workflow("sets", Load(folder) >> FirstN(n=2), workspace=workspace_dir)
    workflow.run()
    store = WorkspaceStore(workspace_dir)
    keys = CountingKeys(open_instance(store).get_dynamic_partitions("sets_images"))
    CountingKeys.iterations = 0
    report = StageExecutor(store, workflow, logging.getLogger("test")).run(workflow.stage("first_n"), keys)
    assert report.images == 30
    assert CountingKeys.iterations <= 2


def test_a_set_decision_is_written_all_or_nothing(tmp_path, workspace_dir, monkeypatch):
    """A set stage rewrites every image's row; written in several transactions, a failure half way leaves a
    mix of the old and the new decision (here: no image kept at all). When the image that changed sorts
    before the images its change affects, nothing is stale afterwards and the mix is what Save exports."""
    from beprepared_dagster.orchestration import executor
    from beprepared_dagster.store import stages

    folder = tmp_path / "in"
    make_images(folder, 2, width=64, height=48)
    make_images(folder, 1, width=80, height=48, start=20)
    workflow = Workflow("sets", Load(folder) >> WidestFirst(), workspace=workspace_dir)
    workflow.run()
    make_images(folder, 1, width=96, height=48, start=30)

    original_chunks, original_write = executor.chunks, stages.write_rows

    def failing_write(conn, workflow_name, stage, *args, **kwargs):
        batch = args[2]  # fingerprint, run_id, rows
        if stage == "widest_first" and any(r.props.get("width") == 96 for r in batch):
            raise OSError("disk full")
        return original_write(conn, workflow_name, stage, *args, **kwargs)

    monkeypatch.setattr(executor, "chunks", lambda items, size: original_chunks(items, 1))
    monkeypatch.setattr(stages, "write_rows", failing_write)
    with pytest.raises(RunFailed):
        workflow.run()
    kept = [
        r[0].props["width"] for r in rows(workspace_dir, "widest_first").values() if r[0].status == "kept"
    ]
    assert kept == [80]  # the previous decision, whole
