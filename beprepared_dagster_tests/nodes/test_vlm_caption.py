"""VLMCaption and JoyCaptionBetaOne on a tiny random LLaVA checkpoint, through `workspace.run()` on a real
Dagster instance and real DuckDB: one caption per image in the export, `caption_model` in the sidecars, cache
hits with zero model loads, prompt changes keep old rows, revision in the key, a deleted model not needed
when everything is cached, a missing model failing before anything is written, a corrupt image failing alone,
empty outputs never cached and retried on the next run.

Asserts the plumbing, never the text (random weights write junk). Does not cover GPUs or real checkpoints."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from beprepared_dagster import JoyCaptionBetaOne, Load, RunFailed, Save, VLMCaption, Workflow
from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.models import runtime
from beprepared_dagster.store import WorkspaceStore
from beprepared_dagster.store.stages import read_rows
from beprepared_dagster_tests.conftest import make_image

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    folder = tmp_path / "pictures"
    for i in range(4):
        make_image(folder / f"pic_{i}.jpg", 64 + 8 * i, 48, seed=i)
    return folder


def captions(ws: Path) -> dict[str, str]:
    return {p.stem: p.read_text() for p in (ws / "output").glob("*.txt")}


def flow(pictures: Path, ws: Path, node) -> Workflow:
    return Workflow("cap", Load(pictures) >> node >> Save, workspace=ws)


def test_joycaption_beta_one_captions_every_image_and_the_sidecar_names_the_model(
    pictures, workspace_dir, tiny_llava
):
    node = JoyCaptionBetaOne(model=str(tiny_llava), max_new_tokens=6, batch_size=3)
    flow(pictures, workspace_dir, node).run()
    written = captions(workspace_dir)
    assert len(written) == 4 and all(isinstance(t, str) for t in written.values())
    sidecars = [
        json.loads(p.read_text()) for p in (workspace_dir / "output").glob("*.json") if p.stem in written
    ]
    assert len(sidecars) == 4
    assert {s["caption_model"] for s in sidecars} == {str(tiny_llava)}


def test_rerun_is_all_cache_hits_and_needs_no_model(pictures, workspace_dir, tiny_llava, tmp_path):
    model = tmp_path / "model-copy"
    shutil.copytree(tiny_llava, model)
    node = VLMCaption(model=str(model), max_new_tokens=4)
    flow(pictures, workspace_dir, node).run()
    loads = runtime.CALLS["load"]
    shutil.rmtree(model)  # a re-run where every image is cached must not even look for it
    summary = flow(pictures, workspace_dir, VLMCaption(model=str(model), max_new_tokens=4)).run()
    assert runtime.CALLS["load"] == loads and summary.runs == []
    assert len(captions(workspace_dir)) == 4


def test_a_prompt_change_captions_again_and_switching_back_is_free(pictures, workspace_dir, tiny_llava):
    def run(prompt: str) -> dict[str, str]:
        flow(
            pictures, workspace_dir, VLMCaption(model=str(tiny_llava), prompt=prompt, max_new_tokens=4)
        ).run()
        return captions(workspace_dir)

    first = run("Describe it.")
    batches = runtime.CALLS["batches"]
    run("Describe it briefly.")
    assert runtime.CALLS["batches"] > batches  # computed again
    batches = runtime.CALLS["batches"]
    assert run("Describe it.") == first  # old rows kept: no model call, same captions
    assert runtime.CALLS["batches"] == batches


def test_revision_is_part_of_the_cache_key(tiny_llava):
    a = VLMCaption(model=str(tiny_llava), revision="main")
    b = VLMCaption(model=str(tiny_llava), revision="0123abc")
    c = VLMCaption(model=str(tiny_llava), revision="main", batch_size=32, devices=["cpu"])
    assert a.fingerprint != b.fingerprint
    assert a.fingerprint == c.fingerprint  # where and in what batches it runs changes no caption


def test_sampling_is_seeded_per_image_whatever_the_batch(pictures, workspace_dir, tiny_llava, tmp_path):
    node = VLMCaption(model=str(tiny_llava), max_new_tokens=6, temperature=1.0, batch_size=4)
    flow(pictures, workspace_dir, node).run()
    first = captions(workspace_dir)
    other = tmp_path / "other-ws"
    node = VLMCaption(model=str(tiny_llava), max_new_tokens=6, temperature=1.0, batch_size=1)
    flow(pictures, other, node).run()
    assert captions(other) == first


def test_a_missing_model_fails_at_once_with_the_download_command_and_writes_nothing(pictures, workspace_dir):
    node = JoyCaptionBetaOne()  # the default hub id, not downloaded, offline
    with pytest.raises(RunFailed) as caught:
        flow(pictures, workspace_dir, node).run()
    message = str(caught.value)
    assert "hf download fancyfeast/llama-joycaption-beta-one-hf-llava" in message
    assert "Traceback" not in message
    with WorkspaceStore(workspace_dir).db.connect() as conn:
        assert read_rows(conn, "cap", "joy_caption_beta_one") == {}


def test_a_corrupt_image_fails_alone(pictures, workspace_dir, tiny_llava):
    good = (pictures / "pic_0.jpg").read_bytes()
    (pictures / "broken.jpg").write_bytes(good[: len(good) // 2])  # passes Load's probe, fails a full decode
    flow(pictures, workspace_dir, VLMCaption(model=str(tiny_llava), max_new_tokens=4)).run()
    with WorkspaceStore(workspace_dir).db.connect() as conn:
        rows = [r[0] for r in read_rows(conn, "cap", "vlm_caption").values()]
    kept = [r for r in rows if r.status == "kept"]
    assert len(kept) >= 4 and all(r.props["caption"] for r in kept)


def test_empty_output_is_recorded_not_cached_and_retried_next_run(
    pictures, workspace_dir, tiny_llava, monkeypatch
):
    from beprepared_dagster.models.backends import vlm

    monkeypatch.setattr(vlm.VLMBackend, "decode", lambda self, tokens, images: ["  "] * len(images))
    flow(pictures, workspace_dir, VLMCaption(model=str(tiny_llava), max_new_tokens=2)).run()
    with WorkspaceStore(workspace_dir).db.connect() as conn:
        rows = [r[0] for r in read_rows(conn, "cap", "vlm_caption").values()]
    assert all(
        r.status == "kept" and r.props["caption_error"] == "the model returned an empty caption" for r in rows
    )
    assert captions(workspace_dir) == {}  # kept without a caption
    monkeypatch.undo()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    summary = flow(pictures, workspace_dir, VLMCaption(model=str(tiny_llava), max_new_tokens=2)).run()
    assert summary.runs, "the failed captions are retried on the next run"
    assert len(captions(workspace_dir)) == 4


def test_on_error_reject_drops_the_image_from_the_export(pictures, workspace_dir, tiny_llava, monkeypatch):
    from beprepared_dagster.models.backends import vlm

    monkeypatch.setattr(vlm.VLMBackend, "decode", lambda self, tokens, images: [""] * len(images))
    node = VLMCaption(model=str(tiny_llava), max_new_tokens=2, on_error="reject")
    flow(pictures, workspace_dir, node).run()
    assert not list((workspace_dir / "output").glob("*.jpg"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"caption_type": "poem"}, "caption_type='poem' is not accepted; use one of descriptive"),
        ({"caption_length": "huge"}, "caption_length='huge'"),
        ({"quantize": "3bit"}, "quantize='3bit' is not accepted; use '4bit', '8bit' or None"),
        ({"dtype": "int8"}, "dtype='int8' is not accepted"),
        ({"on_error": "ignore"}, "on_error='ignore' is not accepted"),
        (
            {
                "extra_options": [
                    "If there is a person/character in the image you must refer to them as {name}."
                ]
            },
            "set name_input",
        ),
    ],
)
def test_bad_parameters_fail_when_the_workflow_loads(kwargs, message):
    with pytest.raises(WorkflowError, match=r"^JoyCaptionBetaOne: .*" + re.escape(message)):
        JoyCaptionBetaOne(**kwargs)


def test_model_stages_share_the_gpu_pool_and_other_stages_do_not(pictures, workspace_dir, tiny_llava):
    from beprepared_dagster.orchestration.defs import build_definitions

    workflow = flow(pictures, workspace_dir, VLMCaption(model=str(tiny_llava)))
    pools = {
        a.key.path[-1]: a.node_def.pool
        for a in build_definitions([workflow]).assets
        if a.key.path[0] == "cap"
    }
    assert pools["vlm_caption"] == "gpu"
    assert pools["load"] is None
