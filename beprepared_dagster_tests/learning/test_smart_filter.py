"""SmartHumanFilter learning red-keep / blue-reject from a person's labels, through `workflow.run()` on real
Dagster, DuckDB, the label journal and the labeling service, with an injected colour embedder whose vectors
separate the classes by construction: waiting with what is missing, held-out accuracy, predictions that never
overwrite or enter the label journal, retraining on a new label, the model blob (safetensors, not pickle),
`when_uncertain` in all three modes (node level with a hand-made model; 'human' routed back to the tab), and
the metadata. Does not cover a browser (the tab is the HumanFilter tab) or real CLIP weights."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from beprepared_dagster import Load, RunFailed, Save, Workflow
from beprepared_dagster.learning.classifier import Classifier
from beprepared_dagster.nodes.base import Image
from beprepared_dagster.nodes.smart import SmartHumanFilter
from beprepared_dagster.orchestration.instance import open_instance
from beprepared_dagster.orchestration.planning import plan
from beprepared_dagster.store import WorkspaceStore, learned
from beprepared_dagster.store.stages import read_rows
from beprepared_dagster_tests.learning.fakes import DIM, ColourEmbed, coloured

pytestmark = pytest.mark.slow


def image_id(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def smart(**overrides) -> SmartHumanFilter:
    settings = dict(min_images=0, min_per_class=8, epochs=150, patience=15, min_accuracy=0.9)
    return SmartHumanFilter(**{**settings, **overrides})


def flow(pictures: Path, ws: Path, clip: Path, node: SmartHumanFilter, name: str = "smart") -> Workflow:
    return Workflow(name, Load(pictures) >> ColourEmbed(model=str(clip)) >> node >> Save, workspace=ws)


def rows(ws: Path, workflow: str = "smart", stage: str = "smart_human_filter") -> dict:
    with WorkspaceStore(ws).db.connect() as conn:
        return {k: r[0] for k, r in read_rows(conn, workflow, stage).items()}


def label(ws: Path, paths: list[Path], keep: bool) -> None:
    for path in paths:
        WorkspaceStore(ws).journal.append("default", "filter", image_id(path), {"keep": keep})


def summary(ws: Path, workflow: str = "smart", stage: str = "smart_human_filter") -> dict:
    with WorkspaceStore(ws).db.connect() as conn:
        return learned.stage_summary(conn, workflow, stage)


@pytest.fixture
def made(tmp_path: Path) -> dict[str, list[Path]]:
    return coloured(tmp_path / "pictures", red=22, blue=22)


def test_learns_the_rule_from_labels_and_decides_the_rest(made, workspace_dir, tiny_clip):
    pictures = made["red"][0].parent
    workflow = flow(pictures, workspace_dir, tiny_clip, smart())
    first = workflow.run(wait=False)
    assert first.waiting == {"smart_human_filter": 44}
    assert "8 more kept and 8 more rejected" in rows(workspace_dir)[image_id(made["red"][0])].reason

    label(workspace_dir, made["red"][:12], keep=True)
    label(workspace_dir, made["blue"][:12], keep=False)
    store = WorkspaceStore(workspace_dir)
    keys = open_instance(store).get_dynamic_partitions("smart_images")
    planned = plan(store, workflow, keys).runs  # what the stage's label sensor launches
    assert {r.stages[0] for r in planned} == {"smart_human_filter"} and sum(r.images for r in planned) >= 24
    workflow.run(wait=False)
    assert plan(store, workflow, keys).runs == []  # settled: rewriting every row does not loop
    result = rows(workspace_dir)
    facts = summary(workspace_dir)
    assert facts["accuracy"] >= 0.9 and facts["held_out"] >= 4 and facts["decided_by_model"] == 20
    assert facts["confusion"]["keep"]["keep"] >= 2 and facts["labels"] == {"keep": 12, "reject": 12}
    for path in made["red"][12:]:
        row = result[image_id(path)]
        assert row.status == "kept" and row.props["passed_smart_filter"] is True
        assert row.props["smart_filter_confidence"] >= 0.7 and "passed_human_filter" not in row.props
    for path in made["blue"][12:]:
        assert result[image_id(path)].status == "rejected"
        assert result[image_id(path)].reason.startswith("predicted reject")
    for path in made["red"][:12]:
        assert result[image_id(path)].props["passed_human_filter"] is True
    exported = {p.stem.split("_")[0] for p in (workspace_dir / "output").glob("*.png")}
    assert exported == {"red"} and len(list((workspace_dir / "output").glob("*.png"))) == 22
    # Predictions are rows of the stage, never labels.
    assert len(WorkspaceStore(workspace_dir).journal.latest("default", "filter")) == 24
    import dagster as dg

    event = open_instance(WorkspaceStore(workspace_dir)).get_latest_materialization_event(
        dg.AssetKey(["smart", "smart_human_filter"])
    )
    meta = event.asset_materialization.metadata
    assert meta["decided_by_model"].value == 20 and meta["model_accuracy"].value == facts["accuracy"]
    assert "| keep |" in meta["confusion_matrix"].value and "uncertain" in meta["confusion_matrix"].value


def test_a_label_always_wins_a_new_label_retrains_and_the_model_is_not_a_pickle(
    made, workspace_dir, tiny_clip
):
    pictures = made["red"][0].parent
    workflow = flow(pictures, workspace_dir, tiny_clip, smart())
    label(workspace_dir, made["red"][:10], keep=True)
    label(workspace_dir, made["blue"][:10], keep=False)
    workflow.run(wait=False)
    store = WorkspaceStore(workspace_dir)
    with store.db.connect() as conn:
        first = conn.execute("SELECT key, objectid FROM learned_models").fetchall()
    assert len(first) == 1
    blob = store.objects.read(first[0][1])
    assert not blob.startswith(b"\x80") and blob[8:9] == b"{"  # safetensors: u64 header size, JSON header
    model = Classifier.from_bytes(blob)
    assert model.classes == ["reject", "keep"] and model.layers[0][0].shape[1] == DIM

    contrary = made["blue"][15]  # the person keeps one blue image: the model would reject it
    label(workspace_dir, [contrary], keep=True)
    workflow.run(wait=False)
    row = rows(workspace_dir)[image_id(contrary)]
    assert row.status == "kept" and row.props.get("passed_human_filter") is True
    with store.db.connect() as conn:
        keys = [r[0] for r in conn.execute("SELECT key FROM learned_models").fetchall()]
    assert len(keys) == 2 and first[0][0] in keys  # retrained on the new labels; the old model kept
    assert summary(workspace_dir)["labels"] == {"keep": 11, "reject": 10}
    new = coloured(pictures / "new", red=0, blue=2, start=30)["blue"]  # decided by the stored model
    workflow.run(wait=False)
    with store.db.connect() as conn:
        trained = conn.execute("SELECT count(*) FROM learned_models").fetchone()[0]
    assert trained == 2  # the same labels: no training
    assert all(rows(workspace_dir)[image_id(p)].reason.startswith("predicted reject") for p in new)


def test_too_low_accuracy_waits_and_says_so(made, workspace_dir, tiny_clip):
    pictures = made["red"][0].parent
    label(workspace_dir, made["red"][:5] + made["blue"][:5], keep=True)  # labels that follow no rule
    label(workspace_dir, made["red"][5:10] + made["blue"][5:10], keep=False)
    flow(pictures, workspace_dir, tiny_clip, smart(min_accuracy=1.0)).run(wait=False)
    facts = summary(workspace_dir)
    waiting = rows(workspace_dir)[image_id(made["red"][20])]
    assert waiting.status == "pending" and "below min_accuracy=1.0" in waiting.reason
    assert facts["decided_by_model"] == 0 and "below min_accuracy" in facts["waiting_because"]


def test_missing_embeddings_say_which_node_to_add(made, workspace_dir):
    pictures = made["red"][0].parent
    with pytest.raises(RunFailed, match=r"SmartHumanFilter needs the `clip` embedding .*add ClipEmbed"):
        Workflow("noemb", Load(pictures) >> smart() >> Save, workspace=workspace_dir).run(wait=False)


class _HandMade:
    """`models` whose model for any labels calls p(keep) from the first feature: 20·x0 logits apart."""

    def __init__(self) -> None:
        weight = np.zeros((2, DIM), dtype=np.float32)
        weight[0, 0], weight[1, 0] = -10, 10
        self.model = Classifier([(weight, np.zeros(2, dtype=np.float32))], ["reject", "keep"])

    def get(self, key: str):
        return self.model.to_bytes(), {"accuracy": 1.0, "held_out": 4, "confusion": {}}

    def put(self, *args) -> None:
        raise AssertionError("a stored model must not train again")


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("reject", ("rejected", "uncertain")),
        ("accept", ("kept", None)),
        ("human", ("waiting", "waiting for a label")),
    ],
)
def test_when_uncertain_modes(mode, expected):
    node = smart(min_per_class=1, when_uncertain=mode)
    vectors = np.zeros((4, DIM), dtype=np.float32)
    vectors[:, 0] = [0.9, -0.9, 0.9, 0.01]  # a labeled keep, a labeled reject, a sure keep, an unsure one
    images = [Image({"clip": {"embedding": "x", "objectid": f"{i:064x}", "dim": DIM}}) for i in range(4)]
    labels = [{"keep": True}, {"keep": False}, None, None]
    result = node.decide(images, labels, vectors, _HandMade(), log=__import__("logging").getLogger("t"))
    sure, unsure = result.outcomes[2], result.outcomes[3]
    assert sure.kept and sure.set["passed_smart_filter"] is True
    assert result.outcomes[0].set == {"passed_human_filter": True} and not result.outcomes[1].kept
    state, words = expected
    if state == "waiting":
        assert isinstance(unsure, str) and words in unsure
    else:
        assert unsure.kept == (state == "kept") and (words is None or words in unsure.reason)
    assert result.summary["uncertain"] == 1


def test_uncertain_images_go_back_to_the_human_filter_tab(tmp_path, workspace_dir, tiny_clip, monkeypatch):
    from beprepared_dagster.labeling.service import LabelingService

    made = coloured(tmp_path / "pictures", red=6, blue=6, grey=3)
    hand = _HandMade()
    monkeypatch.setattr(learned.LearnedModels, "get", lambda self, key: hand.get(key))
    workflow = flow(
        made["red"][0].parent, workspace_dir, tiny_clip, smart(min_per_class=2, when_uncertain="human")
    )
    label(workspace_dir, made["red"][:2], keep=True)
    label(workspace_dir, made["blue"][:2], keep=False)
    summary_ = workflow.run(wait=False)
    assert summary_.waiting == {"smart_human_filter": 3}  # the grey ones: the model is unsure
    service = LabelingService([workflow])
    tab = next(iter(service.queues))
    started = service.start({"tab": tab})
    shown = {item["id"] for item in started["items"]}
    assert started["note"].startswith("Model: 8 image(s) decided by the model; held-out accuracy 1.0")
    greys = {image_id(p) for p in made["grey"]}
    assert greys <= shown and shown == greys | {image_id(p) for p in made["red"][:2] + made["blue"][:2]}
    label(workspace_dir, made["grey"][:1], keep=True)
    workflow.run(wait=False)
    assert rows(workspace_dir)[image_id(made["grey"][0])].status == "kept"
    assert rows(workspace_dir)[image_id(made["grey"][1])].status == "pending"
