"""HumanRank as a stage, headlessly on a real Dagster instance, DuckDB and label journal: it waits until every
image has its comparisons, then `rank_score` / `rank_comparisons` reach Sorted >> Take >> Save; skip_ui
passes images with the score so far; an undo moves scores back; and the label sensor turns a burst of
comparisons into one run over the partitions whose score changed, not one per click.

Not covered: the labeling app (labeling/test_rank_*.py) and the daemon ticking by itself."""

from __future__ import annotations

import itertools
from pathlib import Path

import dagster as dg
import pytest

from beprepared_dagster import HumanRank, Load, Save, Sorted, Take, Workflow
from beprepared_dagster.orchestration.defs import build_definitions
from beprepared_dagster.orchestration.instance import open_instance
from beprepared_dagster.store import WorkspaceStore
from beprepared_dagster.store.stages import read_rows
from beprepared_dagster_tests.conftest import make_images

pytestmark = pytest.mark.slow  # real Dagster runs: 5-20 s each here


def rank_workflow(photos: Path, ws: Path, **params) -> Workflow:
    return Workflow(
        "best",
        Load(photos)
        >> HumanRank(**params)
        >> Sorted(key=lambda image: image.rank_score, reverse=True)
        >> Take(3)
        >> Save,
        workspace=ws,
    )


def keys_in_order(ws: Path) -> list[str]:
    return list(open_instance(WorkspaceStore(ws)).get_dynamic_partitions("best_images"))


def compare(ws: Path, a: str, b: str, result: float, rid: str | None = None) -> None:
    WorkspaceStore(ws).journal.append("default", "rank", a, {"vs": b, "result": result}, request_id=rid)


def rank_rows(ws: Path) -> dict[str, dict]:
    with WorkspaceStore(ws).db.connect() as conn:
        rows = read_rows(conn, "best", "human_rank")
    return {k: {"status": r[0].status, **r[0].props} for k, r in rows.items()}


def test_waits_for_the_comparisons_then_keeps_the_best_three(tmp_path: Path, workspace_dir: Path) -> None:
    make_images(tmp_path / "photos", 6)
    workflow = rank_workflow(tmp_path / "photos", workspace_dir, comparisons_per_image=5)
    first = workflow.run(wait=False)
    assert first.waiting == {"human_rank": 6} and not first.saved
    keys = keys_in_order(workspace_dir)
    best = {k: i for i, k in enumerate(reversed(keys))}  # the truth: later files are better
    pairs = list(itertools.combinations(keys, 2))  # a round robin: 5 comparisons per image
    for a, b in pairs[:-3]:
        compare(workspace_dir, a, b, 1.0 if best[a] > best[b] else 0.0)
    partial = workflow.run(wait=False)
    assert partial.waiting["human_rank"] > 0 and not partial.saved  # not complete: nothing is exported yet
    for a, b in pairs[-3:]:
        compare(workspace_dir, b, a, 1.0 if best[b] > best[a] else 0.0)
    done = workflow.run(wait=False)
    assert done.saved and done.waiting == {}
    rows = rank_rows(workspace_dir)
    assert all(r["rank_comparisons"] == 5 for r in rows.values())
    ordered = sorted(rows, key=lambda k: rows[k]["rank_score"], reverse=True)
    assert ordered == sorted(keys, key=lambda k: best[k], reverse=True)
    exported = {p.stem for p in (workspace_dir / "output").glob("*.jpg")}
    assert len(exported) == 3
    with WorkspaceStore(workspace_dir).db.connect() as conn:
        take = read_rows(conn, "best", "take")
    assert {k for k, r in take.items() if r[0].status == "kept"} == set(ordered[:3])


def test_skip_ui_passes_every_image_with_the_score_so_far(tmp_path: Path, workspace_dir: Path) -> None:
    make_images(tmp_path / "photos", 4)
    workflow = rank_workflow(tmp_path / "photos", workspace_dir, skip_ui=True)
    workflow.run(wait=False)
    a, b, c, d = keys_in_order(workspace_dir)
    compare(workspace_dir, a, b, 1.0)
    compare(workspace_dir, c, a, 0.5)
    summary = workflow.run(wait=False)
    assert summary.saved and summary.waiting == {}
    rows = rank_rows(workspace_dir)
    assert {k: r["rank_comparisons"] for k, r in rows.items()} == {a: 2, b: 1, c: 1, d: 0}
    assert (
        rows[d]["rank_score"] == 1500.0
        and rows[a]["rank_score"] > rows[c]["rank_score"] > rows[b]["rank_score"]
    )


def test_undo_moves_the_scores_back(tmp_path: Path, workspace_dir: Path) -> None:
    make_images(tmp_path / "photos", 2)
    workflow = rank_workflow(tmp_path / "photos", workspace_dir, comparisons_per_image=1)
    workflow.run(wait=False)
    a, b = keys_in_order(workspace_dir)
    compare(workspace_dir, a, b, 1.0, rid="first-rid")
    workflow.run(wait=False)
    assert rank_rows(workspace_dir)[a]["rank_score"] > rank_rows(workspace_dir)[b]["rank_score"]
    WorkspaceStore(workspace_dir).journal.append(
        "default", "rank", a, {"undo": "first-rid"}, request_id="undo-rid"
    )
    compare(workspace_dir, b, a, 1.0, rid="second-rid")  # judged again the other way
    workflow.run(wait=False)
    rows = rank_rows(workspace_dir)
    assert rows[b]["rank_score"] > rows[a]["rank_score"] and rows[a]["rank_comparisons"] == 1


def test_a_burst_of_comparisons_makes_one_run_over_the_changed_scores(
    tmp_path: Path, workspace_dir: Path
) -> None:
    make_images(tmp_path / "photos", 8)
    workflow = rank_workflow(tmp_path / "photos", workspace_dir, comparisons_per_image=2)
    workflow.run(wait=False)
    keys = keys_in_order(workspace_dir)
    instance = open_instance(WorkspaceStore(workspace_dir))
    defs = build_definitions([workflow])
    sensor = defs.get_sensor_def("best_human_rank_labels")
    idle = sensor(dg.build_sensor_context(instance=instance, cursor=None))
    assert not idle.run_requests
    # A burst: images 0-3 get their 2 comparisons each, 4-7 none (they still wait, in the middle of nothing).
    for a, b, result in [(0, 1, 1.0), (2, 3, 0.0), (0, 2, 0.5), (1, 3, 1.0), (0, 3, 1.0), (1, 2, 0.0)]:
        compare(workspace_dir, keys[a], keys[b], result)
    result = sensor(dg.build_sensor_context(instance=instance, cursor=idle.cursor))
    assert len(result.run_requests) == 1  # one run, however many scores moved
    (request,) = result.run_requests
    assert request.tags["dagster/asset_partition_range_start"] == keys[0]
    assert request.tags["dagster/asset_partition_range_end"] == keys[3]
    assert dg.materialize(
        list(defs.assets), selection=request.asset_selection, instance=instance, tags=request.tags
    ).success
    done = set(instance.get_materialized_partitions(dg.AssetKey(["best", "human_rank"])))
    assert set(keys[:4]) <= done
    rows = rank_rows(workspace_dir)
    assert all(rows[k]["status"] == "kept" for k in keys[:4])
    assert all(rows.get(k, {}).get("status") != "kept" for k in keys[4:])  # they still wait
    # Images 4 and 6 compared: only they move (0-3 keep their scores), still one run.
    compare(workspace_dir, keys[4], keys[6], 1.0)
    compare(workspace_dir, keys[6], keys[4], 0.0)
    later = sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor))
    (request,) = later.run_requests
    span = (
        request.tags["dagster/asset_partition_range_start"],
        request.tags["dagster/asset_partition_range_end"],
    )
    assert span == (keys[4], keys[6])
