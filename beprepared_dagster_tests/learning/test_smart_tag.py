"""SmartHumanTag learning "warm" (red) and "cool" (blue) from a person's tags through `workflow.run()` with the
injected colour embedder: waiting with what is missing, predicted tags in `tags` and `tags_predicted`,
person's tags kept, upstream tags kept, per-tag thresholds and held-out figures in the metadata; and the
threshold rule on hand-made scores. Does not cover a browser or real CLIP weights."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from beprepared_dagster import AddTags, Load, Save, SmartHumanTag, Workflow
from beprepared_dagster.learning.classifier import Classifier
from beprepared_dagster.learning.evaluate import tag_thresholds
from beprepared_dagster.store import WorkspaceStore, learned
from beprepared_dagster.store.stages import read_rows
from beprepared_dagster_tests.learning.fakes import ColourEmbed, coloured


def image_id(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tag(ws: Path, paths: list[Path], tags: list[str]) -> None:
    for path in paths:
        WorkspaceStore(ws).journal.append(
            "default", "tag", image_id(path), {"tags": tags, "rejected": False, "version": 1}
        )


@pytest.mark.slow
def test_tags_learned_from_a_person_tag_the_untagged_images(tmp_path, workspace_dir, tiny_clip):
    made = coloured(tmp_path / "pictures", red=18, blue=18)
    node = SmartHumanTag(tags=["warm", "cool"], min_per_tag=8, epochs=150, patience=15, target_precision=0.9)
    graph = (
        Load(made["red"][0].parent) >> ColourEmbed(model=str(tiny_clip)) >> AddTags(["photo"]) >> node >> Save
    )
    workflow = Workflow("tagging", graph, workspace=workspace_dir)
    assert workflow.run(wait=False).waiting == {"smart_human_tag": 36}
    tag(workspace_dir, made["red"][:12], ["warm"])
    tag(workspace_dir, made["blue"][:12], ["cool"])
    workflow.run(wait=False)
    with WorkspaceStore(workspace_dir).db.connect() as conn:
        rows = {k: r[0] for k, r in read_rows(conn, "tagging", "smart_human_tag").items()}
        facts = learned.stage_summary(conn, "tagging", "smart_human_tag")
    for path in made["red"][12:]:
        props = rows[image_id(path)].props
        assert props["tags"] == ["photo", "warm"] and props["tags_predicted"] == ["warm"]
    for path in made["blue"][12:]:
        assert rows[image_id(path)].props["tags_predicted"] == ["cool"]
    person = rows[image_id(made["red"][0])].props
    assert person["tags"] == ["photo", "warm"] and "tags_predicted" not in person
    assert facts["decided_by_model"] == 12 and facts["held_out"] >= 4
    assert all(m["precision"] >= 0.9 and m["threshold"] is not None for m in facts["tags"].values())
    assert len(WorkspaceStore(workspace_dir).journal.latest("default", "tag")) == 24


@pytest.mark.slow
def test_too_few_tags_wait_and_say_how_many_more(tmp_path, workspace_dir, tiny_clip):
    made = coloured(tmp_path / "pictures", red=4, blue=4)
    node = SmartHumanTag(tags=["warm", "cool"], min_per_tag=3)
    workflow = Workflow(
        "few",
        Load(made["red"][0].parent) >> ColourEmbed(model=str(tiny_clip)) >> node >> Save,
        workspace=workspace_dir,
    )
    tag(workspace_dir, made["red"][:2], ["warm"])
    workflow.run(wait=False)
    with WorkspaceStore(workspace_dir).db.connect() as conn:
        row = read_rows(conn, "few", "smart_human_tag")[image_id(made["blue"][3])][0]
    assert row.status == "pending" and "min_per_tag=3" in row.reason and "1 more with it" in row.reason
    from beprepared_dagster.labeling.service import LabelingService

    service = LabelingService([workflow])  # its tab is a HumanTag tab of the domain
    (config,) = service.tabs()
    assert config["kind"] == "tag" and config["rows"] == [["warm", "cool"]] and config["version"] == 1
    write = {
        "tab": config["key"],
        "id": image_id(made["blue"][3]),
        "rid": "request-1",
        "value": {"tags": ["cool"]},
    }
    assert service.record({"writes": [write]})["results"][0]["status"] == "ok"


def test_thresholds_reach_the_target_precision_with_the_most_recall():
    model = Classifier(
        [(np.eye(2, dtype=np.float32) * 10, np.zeros(2, dtype=np.float32))], ["a", "b"], multilabel=True
    )
    x = np.array([[0.5, 0], [0.3, 0], [0.2, 0], [0.1, 0], [-0.4, 0]], dtype=np.float32)
    y = np.array([[1, 0], [1, 0], [0, 0], [1, 0], [0, 0]])
    found = tag_thresholds(model, x, y, target_precision=0.8)
    # Precision at each score as threshold: 3/5, 3/4, 2/3, then 2/2 at sigmoid(3): the first to reach 0.8.
    sigmoid = 1 / (1 + np.exp(-np.array([3.0, 2.0])))
    assert found["a"]["threshold"] == pytest.approx(sigmoid.mean(), abs=1e-5)  # midway below sigmoid(3)
    assert found["a"]["precision"] == 1.0 and found["a"]["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert found["b"]["threshold"] is None and found["b"]["support"] == 0
