"""Set-level stages through the executor and the headless runner: the node sees every kept upstream image in
insertion order whatever range a run covers, re-decides when upstream changes, caches per-image features,
and only images whose decision changed go stale below it; a failing decision fails the run with its message.

Uses small test-only set nodes; the catalog's Take/Sorted/dedupe nodes have their own tests in nodes/."""

from __future__ import annotations

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
