"""ClipEmbed, FuzzyDedupe(method="clip") and AestheticScore on tiny random CLIP and SigLIP checkpoints, through
`workflow.run()` on a real Dagster instance and real DuckDB: typed FLOAT[] vectors in the embeddings table,
references in the rows and none in the sidecars, SigLIP, dedupe on stored vectors, the "top N by aesthetics"
workflow, reuse of ClipEmbed's vectors without loading CLIP again, head layouts, and the error messages.

Random weights: asserts plumbing and arithmetic, never what a real CLIP thinks. No GPU, no real checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from beprepared_dagster import (
    AestheticScore,
    ClipEmbed,
    FuzzyDedupe,
    Load,
    RunFailed,
    Save,
    Sorted,
    Take,
    Workflow,
    Workspace,
)
from beprepared_dagster.models import runtime
from beprepared_dagster.models.backends.aesthetic_head import load_head
from beprepared_dagster.models.loading import ModelNotFound
from beprepared_dagster.store import WorkspaceStore
from beprepared_dagster.store.stages import read_rows
from beprepared_dagster_tests.tiny_models.clip import PROJECTION, SIGLIP_HIDDEN

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))


def solid(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, "PNG")
    return path


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    folder = tmp_path / "pictures"
    solid(folder / "red-big.png", (96, 96), (220, 20, 20))
    solid(folder / "red-small.png", (40, 40), (220, 20, 20))
    solid(folder / "blue.png", (64, 64), (20, 20, 220))
    rng = np.random.default_rng(0)
    from PIL import Image

    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / "noise.png")
    return folder


def sidecars(ws: Path) -> list[dict]:
    return [
        json.loads(p.read_text()) for p in (ws / "output").glob("*.json") if p.with_suffix(".png").exists()
    ]


def rows_of(ws: Path, workflow: str, stage: str) -> dict:
    with WorkspaceStore(ws).db.connect() as conn:
        return {
            r[0].props["original_path"].rsplit("/", 1)[-1]: r[0]
            for r in read_rows(conn, workflow, stage).values()
        }


def test_clip_embeddings_are_typed_normalised_arrays_referenced_by_the_rows_and_not_in_sidecars(
    pictures, workspace_dir, tiny_clip
):
    Workflow(
        "emb",
        Load(pictures) >> ClipEmbed(model=str(tiny_clip), batch_size=3) >> Save,
        workspace=workspace_dir,
    ).run()
    rows = rows_of(workspace_dir, "emb", "clip_embed")
    assert len(rows) == 4 and all(r.status == "kept" for r in rows.values())
    ref = rows["blue.png"].props["clip"]
    assert (
        ref["dim"] == PROJECTION
        and ref["embedding"] == str(tiny_clip)
        and ref["objectid"] == rows["blue.png"].props["objectid"]
    )
    with WorkspaceStore(workspace_dir).db.connect() as conn:
        kind = conn.execute("SELECT typeof(vector) FROM embeddings LIMIT 1").fetchone()[0]
        vectors = conn.execute("SELECT vector FROM embeddings").fetchall()
    assert kind == "FLOAT[]" and len(vectors) == 4
    assert all(abs(np.linalg.norm(v[0]) - 1) < 1e-5 and len(v[0]) == PROJECTION for v in vectors)
    written = sidecars(workspace_dir)
    assert len(written) == 4 and all("clip" not in s and "objectid" in s for s in written)


def test_siglip_checkpoints_embed_too_and_a_cached_rerun_loads_nothing(pictures, workspace_dir, tiny_siglip):
    flow = Workflow(
        "sig",
        Load(pictures) >> ClipEmbed(model=str(tiny_siglip), target_prop="siglip") >> Save,
        workspace=workspace_dir,
    )
    flow.run()
    rows = rows_of(workspace_dir, "sig", "clip_embed")
    assert {r.props["siglip"]["dim"] for r in rows.values()} == {SIGLIP_HIDDEN}
    runtime.CALLS.clear()
    flow.run()
    assert runtime.CALLS["load"] == 0


def test_fuzzy_dedupe_on_clip_drops_the_same_picture_at_another_size(pictures, workspace_dir, tiny_clip):
    flow = (
        Load(pictures)
        >> ClipEmbed(model=str(tiny_clip))
        >> FuzzyDedupe(method="clip", threshold=0.999)
        >> Save
    )
    Workflow("dd", flow, workspace=workspace_dir).run()
    rows = rows_of(workspace_dir, "dd", "fuzzy_dedupe")
    assert rows["red-small.png"].status == "rejected" and "red-big.png" in rows["red-small.png"].reason
    assert [n for n, r in rows.items() if r.status == "kept"] == sorted(
        ["red-big.png", "blue.png", "noise.png"], key=list(rows).index
    )


def test_fuzzy_dedupe_on_clip_without_clip_embed_says_which_node_to_add(pictures, workspace_dir):
    with pytest.raises(RunFailed, match=r"needs the `clip` embedding that ClipEmbed stores.*add ClipEmbed"):
        Workflow("nd", Load(pictures) >> FuzzyDedupe(method="clip") >> Save, workspace=workspace_dir).run()


def expected_scores(clip: Path, head, files: list[Path]) -> dict[str, float]:
    from PIL import Image

    from beprepared_dagster.models.backends.clip import load_vision_tower

    model, processor, _ = load_vision_tower(clip, "cpu", "float32")
    pixels = processor(images=[Image.open(f).convert("RGB") for f in files], return_tensors="pt")[
        "pixel_values"
    ]
    import torch

    with torch.inference_mode():
        vectors = torch.nn.functional.normalize(model(pixel_values=pixels).image_embeds, dim=-1).numpy()
    return dict(zip([f.name for f in files], head.score(vectors), strict=True))


def test_top_n_by_aesthetics_as_a_user_writes_it(pictures, workspace_dir, tiny_clip, aesthetic_heads):
    with Workspace(workspace_dir, name="top") as workspace:
        (
            Load(str(pictures))
            >> AestheticScore(model=str(tiny_clip), head=str(aesthetic_heads["v1"]))
            >> Sorted(lambda image: image.aesthetic_score, reverse=True)
            >> Take(2)
            >> Save
        )
        workspace.run()
    expected = expected_scores(tiny_clip, load_head(aesthetic_heads["v1"]), sorted(pictures.iterdir()))
    best = sorted(expected, key=expected.get, reverse=True)[:2]
    exported = sorted(s["original_path"].rsplit("/", 1)[-1] for s in sidecars(workspace_dir))
    assert exported == sorted(best)
    scores = {
        n: r.props["aesthetic_score"] for n, r in rows_of(workspace_dir, "top", "aesthetic_score").items()
    }
    assert scores == pytest.approx(expected, abs=1e-4)


def test_aesthetic_score_reuses_clip_embed_vectors_without_loading_clip_again(
    pictures, workspace_dir, tiny_clip, aesthetic_heads
):
    head = str(aesthetic_heads["v2"])
    runtime.CALLS.clear()
    Workflow(
        "reuse",
        Load(pictures)
        >> ClipEmbed(model=str(tiny_clip))
        >> AestheticScore(model=str(tiny_clip), head=head)
        >> Save,
        workspace=workspace_dir,
    ).run()
    assert runtime.CALLS["load"] == 1  # ClipEmbed's; AestheticScore scored the stored vectors
    reused = {
        n: r.props["aesthetic_score"] for n, r in rows_of(workspace_dir, "reuse", "aesthetic_score").items()
    }
    direct = expected_scores(tiny_clip, load_head(head), sorted(pictures.iterdir()))
    assert reused == pytest.approx(direct, abs=1e-4)


@pytest.mark.parametrize("layout", ["v1", "linear", "v2"])
def test_head_layouts_score_like_their_layers(aesthetic_heads, layout):
    import torch

    head = load_head(aesthetic_heads[layout])
    x = np.random.default_rng(1).normal(size=(5, PROJECTION)).astype(np.float32)
    if layout == "v2":
        state = torch.load(aesthetic_heads["v2"], weights_only=True)
        y = torch.from_numpy(x)
        for i in (0, 2, 4, 6, 7):
            y = y @ state[f"layers.{i}.weight"].T + state[f"layers.{i}.bias"]
        want = y[:, 0].numpy()
    else:
        w, b = head.layers[0]
        want = x @ w[0] + b[0]
    assert head.score(x) == pytest.approx(want, abs=1e-4)


def test_bad_heads_and_model_folders_name_what_is_missing(tmp_path, pictures, workspace_dir, tiny_clip):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFound, match="holds no aesthetic head: missing a weight file"):
        load_head(tmp_path / "empty")
    not_clip = tmp_path / "bert"
    not_clip.mkdir()
    (not_clip / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (not_clip / "preprocessor_config.json").write_text("{}")
    (not_clip / "model.safetensors").write_bytes(b"")
    with pytest.raises(
        RunFailed, match="is a 'bert' checkpoint; ClipEmbed and AestheticScore run CLIP or SigLIP"
    ):
        Workflow(
            "bad", Load(pictures) >> ClipEmbed(model=str(not_clip)) >> Save, workspace=workspace_dir
        ).run()
    with pytest.raises(
        RunFailed, match=r"not a CLIP/SigLIP model folder: missing config.json, preprocessor_config.json"
    ):
        Workflow(
            "bad2",
            Load(pictures) >> ClipEmbed(model=str(tmp_path / "empty")) >> Save,
            workspace=workspace_dir,
        ).run()


def test_a_missing_hub_model_fails_offline_with_the_download_command(pictures, workspace_dir, tiny_clip):
    with pytest.raises(RunFailed, match=r"hf download openai/clip-vit-large-patch14"):
        Workflow("off", Load(pictures) >> ClipEmbed() >> Save, workspace=workspace_dir).run()
    # The default head is a hub id too: resolved with the model, before anything is written.
    with pytest.raises(RunFailed, match=r"hf download shunk031/aesthetics-predictor-v1-vit-large-patch14"):
        Workflow(
            "off2", Load(pictures) >> AestheticScore(model=str(tiny_clip)) >> Save, workspace=workspace_dir
        ).run()


def test_a_corrupt_file_fails_only_itself(tmp_path, tiny_clip):
    from beprepared_dagster.models import loading
    from beprepared_dagster.models.api import ItemError, WorkItem

    good = solid(tmp_path / "good.png", (32, 32), (1, 2, 3))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(good.read_bytes()[:40])
    node = ClipEmbed(model=str(tiny_clip))
    results: dict = {}
    runtime.run_model(
        node.backend,
        {},
        loading.resolve(node.model_spec()),
        [WorkItem(0, str(good)), WorkItem(1, str(bad))],
        batch_size=2,
        settings=node.device_settings,
        log=__import__("logging").getLogger("t"),
        on_results=results.update,
    )
    assert results[0].shape == (PROJECTION,) and isinstance(results[1], ItemError) and results[1].bad_image
