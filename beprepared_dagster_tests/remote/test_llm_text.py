"""LLMCaptionTransform and LLMCaptionVariations through the stage executor against a fake Chat Completions
server: template rendering and content addressing (equal prompts share one request), a callable prompt, the
load-time check of template properties, variations as a list beside the caption with the real instructions
sent; and the original's multi-VLM fusion workflow through `workflow.run()` on a real Dagster instance: two
captioners into two properties, HumanTag(skip_ui=True) tags, the fused caption, its variations exported as
multi-line caption files, and the stage metadata in Dagster.

Does not cover a real LLM."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
import pytest

from beprepared_dagster import (
    HumanTag,
    LLMCaptionTransform,
    LLMCaptionVariations,
    Load,
    Map,
    OpenAICaption,
    Save,
    Set,
    SetCaption,
    Workflow,
)
from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.nodes.llm_text import VARIATIONS_PROMPT
from beprepared_dagster.orchestration.instance import open_instance
from beprepared_dagster.store import WorkspaceStore
from beprepared_dagster_tests.conftest import make_image
from beprepared_dagster_tests.remote.fake_server import Answer, answer_for, caption_for
from beprepared_dagster_tests.remote.helpers import run_stages, stored


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    folder = tmp_path / "pictures"
    for i in range(3):
        make_image(folder / f"p{i}.jpg", 64 + 8 * i, 48, seed=i)
    return folder


def test_a_template_renders_properties_and_equal_prompts_share_one_request(pictures, workspace_dir, server):
    workflow = Workflow(
        "llm",
        Load(pictures)
        >> SetCaption("a small dog")
        >> Set(tags=["dog", "grass"])
        >> LLMCaptionTransform(model="llm", prompt="Tags: {tags}\nCaption: {caption}", base_url=server.url),
        workspace=workspace_dir,
    )
    run_stages(workflow, workspace_dir)
    assert len(server.received) == 1  # three images, one rendered prompt
    assert server.received[0].prompt == "Tags: dog, grass\nCaption: a small dog"
    assert server.received[0].body["messages"] == [
        {"role": "user", "content": "Tags: dog, grass\nCaption: a small dog"}
    ]
    rows = stored(workflow, workspace_dir, "llm_caption_transform")
    assert {r.props["caption"] for r in rows.values()} == {
        answer_for("Tags: dog, grass\nCaption: a small dog")
    }


def test_a_function_prompt_is_called_per_image(pictures, workspace_dir, server):
    node = LLMCaptionTransform(model="llm", prompt=lambda image: f"Width {image.width}", target_prop="width_text",
                               base_url=server.url, temperature=0.0)  # fmt: skip
    workflow = Workflow("llm", Load(pictures) >> node, workspace=workspace_dir)
    run_stages(workflow, workspace_dir)
    assert sorted(r.prompt for r in server.received) == ["Width 64", "Width 72", "Width 80"]
    assert server.received[0].body["temperature"] == 0.0
    rows = stored(workflow, workspace_dir, "llm_caption_transform")
    assert rows["p1.jpg"].props["width_text"] == answer_for("Width 72")


def test_a_template_naming_a_property_no_stage_sets_fails_at_load_time(pictures, workspace_dir):
    with pytest.raises(WorkflowError, match=r"prompt names 'captoin', which no stage above sets.*caption"):
        Workflow(
            "llm",
            Load(pictures) >> SetCaption("x") >> LLMCaptionTransform(model="m", prompt="Fix: {captoin}"),
            workspace=workspace_dir,
        )
    # Above a Map (which may set anything) the check waits for the images.
    Workflow(
        "ok",
        Load(pictures) >> Map(lambda i: i) >> LLMCaptionTransform(model="m", prompt="{x}"),
        workspace=workspace_dir,
    )


@pytest.mark.parametrize(
    "prompt", ["Caption: {0}", "Caption: {caption.upper}", "Caption: {caption", "{caption!r}"]
)
def test_a_malformed_template_fails_when_the_node_is_built(prompt):
    with pytest.raises(WorkflowError, match="prompt"):
        LLMCaptionTransform(model="m", prompt=prompt)


def test_an_image_with_nothing_to_send_is_not_sent_and_is_retried(pictures, workspace_dir, server):
    node = LLMCaptionTransform(model="m", prompt="Fix {maybe}", base_url=server.url)
    workflow = Workflow("llm", Load(pictures) >> Map(lambda i: i) >> node, workspace=workspace_dir)
    run_stages(workflow, workspace_dir)
    rows = stored(workflow, workspace_dir, "llm_caption_transform")
    assert server.received == []
    assert {r.props["caption_error"] for r in rows.values()} == {"nothing to send: maybe empty or missing"}


def test_variations_are_a_list_beside_the_caption_with_the_instructions_sent(pictures, workspace_dir, server):
    server.handler = lambda n, body: Answer(text=f"variation {n}")
    node = LLMCaptionVariations(
        variations=3, instructions="Keep 'ohwx' first.", base_url=server.url, parallel=1
    )
    workflow = Workflow(
        "llm", Load(pictures) >> SetCaption("ohwx, a red car") >> node, workspace=workspace_dir
    )
    run_stages(workflow, workspace_dir)
    assert len(server.received) == 3  # one caption, three paraphrases
    prompt = server.received[0].prompt
    assert prompt.startswith(VARIATIONS_PROMPT) and "Additional instructions: Keep 'ohwx' first." in prompt
    assert "self.instructions" not in prompt and prompt.endswith("Caption: ohwx, a red car")
    assert server.received[0].body["temperature"] == 0.7 and server.received[0].body["model"] == "gpt-4o-mini"
    rows = stored(workflow, workspace_dir, "llm_caption_variations")
    expected = ["ohwx, a red car", "variation 1", "variation 2", "variation 3"]
    assert all(
        r.props["caption_variations"] == expected and r.props["caption"] == "ohwx, a red car"
        for r in rows.values()
    )
    assert len(rows) == 3  # the dataset did not grow


@pytest.mark.slow
def test_multi_vlm_fusion_workflow_exports_the_fused_caption_and_its_variations(
    pictures, workspace_dir, server
):
    """The original's multi-VLM fusion example, on one fake server speaking for three models."""
    first = sorted(pictures.iterdir())[0]
    WorkspaceStore(workspace_dir).journal.append(
        "default",
        "tag",
        hashlib.sha256(first.read_bytes()).hexdigest(),
        {"tags": ["dog"], "rejected": False, "version": 1},
    )
    server.handler = lambda n, body: (
        Answer(text=f"variant {n}") if "Rewrite the caption" in str(body) else None
    )
    fusion = "Write one caption from these.\nTags: {tags}\nCaption A: {caption_a}\nCaption B: {caption_b}"
    workflow = Workflow(
        "fusion",
        Load(pictures)
        >> OpenAICaption(model="vlm-a", base_url=server.url, target_prop="caption_a")
        >> OpenAICaption(model="vlm-b", base_url=server.url, target_prop="caption_b", prompt="Describe it.")
        >> HumanTag(tags=["dog", "cat"], skip_ui=True)
        >> LLMCaptionTransform(model="llm", prompt=fusion, base_url=server.url)
        >> LLMCaptionVariations(variations=2, model="llm", base_url=server.url, parallel=1)
        >> Save(caption_prop="caption_variations", multi_caption="lines"),
        workspace=workspace_dir,
    )
    workflow.run()
    vlm = [r for r in server.received if r.image_url]
    assert sorted(r.body["model"] for r in vlm) == ["vlm-a"] * 3 + ["vlm-b"] * 3
    fused = [
        r for r in server.received if r.body["model"] == "llm" and r.prompt.startswith("Write one caption")
    ]
    assert len(fused) == 3
    dog = next(r.prompt for r in fused if "Tags: dog\n" in r.prompt)
    image = first.read_bytes()
    assert (
        f"Caption A: {caption_for(image)}\nCaption B: {caption_for(image)}" in dog
    )  # the file is sent as is
    files = sorted((workspace_dir / "output").glob("*.txt"))
    assert len(files) == 3 and len(list((workspace_dir / "output").glob("*.jpg"))) == 3
    lines = {f.stem: f.read_text().split("\n") for f in files}
    assert all(
        len(v) == 3 and v[0].startswith("rewritten ") and v[1].startswith("variant ") for v in lines.values()
    )
    assert answer_for(dog) in {v[0] for v in lines.values()}
    meta = (
        open_instance(WorkspaceStore(workspace_dir))
        .get_latest_materialization_event(dg.AssetKey(["fusion", "llm_caption_transform"]))
        .asset_materialization.metadata
    )
    assert (meta["requests"].value, meta["prompt_tokens"].value, meta["model"].value) == (3, 300, "llm")
    assert meta["servers"].value == {server.url: {"requests": 3, "ok": 3, "failed": 0}}
    requests = len(server.received)
    summary = workflow.run()
    assert len(server.received) == requests and summary.runs == []  # an unchanged re-run sends nothing
