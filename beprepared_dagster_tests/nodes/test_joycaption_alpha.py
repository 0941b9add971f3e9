"""JoyCaptionAlphaOne / JoyCaptionAlphaTwo: parameters checked when the workflow loads, the prompts they send,
where their checkpoints are looked for (a Hugging Face space subfolder, or a local folder, plus the two bases),
the errors for a missing or incomplete checkpoint, and one captioning run per node through the real runtime on
a tiny random checkpoint (one found in the hub cache as the original's space layout).

Does not cover a Dagster run of these nodes (the stage machinery is shared with nodes/test_vlm_caption.py), GPUs
or the real checkpoints."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from beprepared_dagster import JoyCaptionAlphaOne, JoyCaptionAlphaTwo
from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.models import loading
from beprepared_dagster.nodes.joycaption_prompts import EXTRA_OPTIONS
from beprepared_dagster_tests.conftest import make_image
from beprepared_dagster_tests.nodes.model_runs import run_node

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def test_default_prompts_are_the_originals():
    assert (
        JoyCaptionAlphaOne().full_prompt() == "Write a descriptive caption for this image in a formal tone."
    )
    assert JoyCaptionAlphaTwo().full_prompt() == (
        "Write a long descriptive caption for this image in a formal tone."
    )
    two = JoyCaptionAlphaTwo(
        caption_type="art_critic", caption_length=50, extra_options=[EXTRA_OPTIONS[0]], name_input="Ada"
    )
    assert two.full_prompt().endswith(
        "Keep it within 50 words. If there is a person/character in the image you must refer to them as Ada."
    )
    assert (
        JoyCaptionAlphaOne(prompt="Tags.", instructions="No colours.").full_prompt() == "Tags.\n\nNo colours."
    )


@pytest.mark.parametrize(
    ("node", "kwargs", "message"),
    [
        (
            JoyCaptionAlphaOne,
            {"caption_type": "training_prompt"},
            "caption_type='training_prompt' is not accepted; use one of descriptive, stable_diffusion, booru",
        ),
        (
            JoyCaptionAlphaOne,
            {"caption_tone": "cheeky"},
            "caption_tone='cheeky' is not accepted; use one of formal, informal",
        ),
        (JoyCaptionAlphaOne, {"caption_length": "epic"}, "caption_length='epic'"),
        (
            JoyCaptionAlphaTwo,
            {"caption_type": "straightforward"},
            "caption_type='straightforward' is not accepted",
        ),
        (JoyCaptionAlphaTwo, {"extra_options": [EXTRA_OPTIONS[0]]}, "set name_input"),
        (
            JoyCaptionAlphaTwo,
            {"model": "a/b/c/d"},
            "model='a/b/c/d': use '<owner>/<space>/<checkpoint folder>'",
        ),
        (JoyCaptionAlphaTwo, {"vision_model": ""}, "vision_model must be a hub id or a folder"),
        (JoyCaptionAlphaOne, {"batch_size": 0}, "batch_size must be a positive integer"),
    ],
)
def test_bad_parameters_fail_when_the_workflow_loads(node, kwargs, message):
    with pytest.raises(
        WorkflowError, match="^" + re.escape(f"{node.__name__}: ") + ".*" + re.escape(message)
    ):
        node(**kwargs)


def test_the_default_checkpoint_is_the_originals_space_folder_and_only_it_is_fetched():
    spec = JoyCaptionAlphaOne().model_spec()
    assert (spec.model, spec.repo_type, spec.subfolder) == (
        "fancyfeast/joy-caption-alpha-one",
        "space",
        "9em124t2-499968",
    )
    assert set(spec.allow_patterns) == {
        f"9em124t2-499968/{name}"
        for name in (
            "clip_model.pt",
            "image_adapter.pt",
            "text_model/adapter_config.json",
            "text_model/adapter_model.safetensors",
        )
    }
    two = JoyCaptionAlphaTwo()
    assert (two.model_spec().model, two.model_spec().subfolder) == (
        "fancyfeast/joy-caption-alpha-two",
        "cgrkzexw-599808",
    )
    bases = two.extra_specs()
    assert bases["vision_model"].model == "google/siglip-so400m-patch14-384"
    assert bases["vision_model"].allow_patterns == ("config.json",)  # the checkpoint holds the vision weights
    assert bases["text_model"].model == "unsloth/Meta-Llama-3.1-8B-Instruct"
    assert JoyCaptionAlphaOne().extra_specs()["text_model"].model == "meta-llama/Meta-Llama-3.1-8B"


def test_a_missing_checkpoint_offline_says_how_to_download_it():
    with pytest.raises(loading.ModelNotFound) as caught:
        loading.resolve(JoyCaptionAlphaOne().model_spec())
    assert (
        "hf download fancyfeast/joy-caption-alpha-one --repo-type space --include '9em124t2-499968/clip_model.pt'"
        in str(caught.value)
    )


def test_a_local_folder_missing_files_names_them(tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "image_adapter.pt").write_bytes(b"")
    with pytest.raises(loading.ModelNotFound) as caught:
        loading.resolve(JoyCaptionAlphaTwo(model=str(partial)).model_spec())
    assert (
        "missing clip_model.pt, text_model/adapter_config.json, text_model/adapter_model.safetensors"
        in str(caught.value)
    )


def test_the_bases_are_part_of_the_cache_key():
    assert JoyCaptionAlphaTwo().fingerprint != JoyCaptionAlphaTwo(text_model="/models/llama").fingerprint
    assert JoyCaptionAlphaTwo().fingerprint == JoyCaptionAlphaTwo(batch_size=16).fingerprint


def put_in_hub_cache(cache: Path, repo: str, folder: Path, subfolder: str) -> None:
    """The layout huggingface_hub leaves after downloading a space."""
    root = cache / f"spaces--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(COMMIT)
    shutil.copytree(folder, root / "snapshots" / COMMIT / subfolder)


@pytest.mark.slow
def test_alpha_one_captions_from_the_spaces_folder_in_the_hub_cache(tiny_joycaption_alpha, offline, tmp_path):
    put_in_hub_cache(
        offline, "fancyfeast/joy-caption-alpha-one", tiny_joycaption_alpha.checkpoint, "9em124t2-499968"
    )
    node = JoyCaptionAlphaOne(
        vision_model=str(tiny_joycaption_alpha.vision),
        text_model=str(tiny_joycaption_alpha.text),
        max_new_tokens=5,
    )
    files = [make_image(tmp_path / f"{i}.jpg", 48, 32 + 8 * i, seed=i) for i in range(5)]
    outcomes = run_node(node, files)
    assert sorted(outcomes) == sorted(f.name for f in files)
    for outcome in outcomes.values():
        assert outcome.kept and isinstance(outcome.set["caption"], str) and outcome.set["caption"]
        assert outcome.set["caption_model"] == f"fancyfeast/joy-caption-alpha-one/9em124t2-499968@{COMMIT}"


@pytest.mark.slow
def test_alpha_two_captions_from_a_local_folder_into_the_target_prop(tiny_joycaption_alpha, tmp_path):
    node = JoyCaptionAlphaTwo(
        target_prop="joy",
        model=str(tiny_joycaption_alpha.checkpoint),
        vision_model=str(tiny_joycaption_alpha.vision),
        text_model=str(tiny_joycaption_alpha.text),
        max_new_tokens=5,
        batch_size=2,
    )
    files = [make_image(tmp_path / f"{i}.jpg", 40, 40, seed=i) for i in range(3)]
    outcomes = run_node(node, files)
    assert len(outcomes) == 3 and all(o.set["joy"] for o in outcomes.values())
    assert {o.set["caption_model"] for o in outcomes.values()} == {str(tiny_joycaption_alpha.checkpoint)}


@pytest.mark.slow
def test_a_workflow_captions_with_the_bases_and_a_cached_rerun_needs_none_of_them(
    tiny_joycaption_alpha, workspace_dir, tmp_path
):
    from beprepared_dagster import Load, Save, Workflow
    from beprepared_dagster.models import runtime

    pictures = tmp_path / "pictures"
    for i in range(3):
        make_image(pictures / f"pic_{i}.jpg", 48, 40, seed=i)
    bases = tmp_path / "bases"
    shutil.copytree(tiny_joycaption_alpha.vision, bases / "siglip")
    shutil.copytree(tiny_joycaption_alpha.text, bases / "llama")

    def run():
        node = JoyCaptionAlphaTwo(
            model=str(tiny_joycaption_alpha.checkpoint),
            vision_model=str(bases / "siglip"),
            text_model=str(bases / "llama"),
            max_new_tokens=4,
        )
        return Workflow("joy", Load(pictures) >> node >> Save, workspace=workspace_dir).run()

    run()
    assert len([p for p in (workspace_dir / "output").glob("*.txt") if p.read_text()]) == 3
    loads = runtime.CALLS["load"]
    shutil.rmtree(bases)  # every image is cached: neither base is looked for
    assert run().runs == [] and runtime.CALLS["load"] == loads
