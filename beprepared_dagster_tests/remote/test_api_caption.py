"""GPT4oCaption / OpenAICaption / GeminiCaption through the stage executor against a real HTTP server on
127.0.0.1, with a real workspace (DuckDB, object store): the requests sent (model, prompt, image data URL in
its real format or downscaled JPEG), captions stored as they arrive, zero requests on an unchanged re-run,
refusals and rejections as `caption_error` retried next run, keys (missing, named, never leaked), the cache
key without the URL (and with it under `cache_scope="server"`), `$OPENAI_BASE_URL`, the request budget, a
wrong URL failing the stage, and the run's API metadata.

Does not cover Dagster or Save (test_llm_text.py's workflow test does) or a real model server."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from PIL import Image as PILImage

from beprepared_dagster import GeminiCaption, GPT4oCaption, Load, OpenAICaption, Save, Workflow
from beprepared_dagster.errors import StageFailed, WorkflowError
from beprepared_dagster.nodes.api_caption import DEFAULT_PROMPT
from beprepared_dagster.orchestration import metadata
from beprepared_dagster.store.stages import RETRY
from beprepared_dagster_tests.conftest import make_image
from beprepared_dagster_tests.remote.conftest import TEST_KEY
from beprepared_dagster_tests.remote.fake_server import Answer, caption_for
from beprepared_dagster_tests.remote.helpers import run_stages, store_text, stored


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    folder = tmp_path / "pictures"
    make_image(folder / "big.jpg", 1500, 1000, seed=1)
    make_image(folder / "small.jpg", 64, 48, seed=2)
    make_image(folder / "small.png", 40, 30, seed=3, fmt="PNG")
    return folder


def flow(pictures: Path, ws: Path, node) -> Workflow:
    return Workflow("api", Load(pictures) >> node >> Save, workspace=ws)


def caption_stage(workflow: Workflow) -> str:
    return workflow.stages[1].name


def test_each_image_goes_in_its_real_format_or_downscaled_and_its_caption_is_stored(
    pictures, workspace_dir, server
):
    workflow = flow(
        pictures, workspace_dir, GPT4oCaption(base_url=server.url, instructions="Mention the colours.")
    )
    run_stages(workflow, workspace_dir)
    sent = {r.image_url.split(";")[0]: r for r in server.received}
    assert len(server.received) == 3 and set(sent) == {"data:image/jpeg", "data:image/png"}
    by_size = {PILImage.open(io.BytesIO(r.image_bytes)).size: r for r in server.received}
    assert set(by_size) == {(1024, 683), (64, 48), (40, 30)}  # the large one downscaled to 1024 px
    assert by_size[(64, 48)].image_bytes == (pictures / "small.jpg").read_bytes()  # sent as it is
    assert by_size[(40, 30)].image_bytes == (pictures / "small.png").read_bytes()
    request = server.received[0].body
    assert request["model"] == "gpt-4o-2024-08-06" and request["max_tokens"] == 300
    assert request["temperature"] == 0.6 and "detail" not in request["messages"][0]["content"][1]["image_url"]
    assert server.received[0].prompt == f"{DEFAULT_PROMPT}\n\nMention the colours."
    rows = stored(workflow, workspace_dir, caption_stage(workflow))
    expected = {size: caption_for(r.image_bytes) for size, r in by_size.items()}
    assert rows["big.jpg"].props["caption"] == expected[(1024, 683)]
    assert rows["small.png"].props["caption"] == expected[(40, 30)]
    assert {r.props["caption_model"] for r in rows.values()} == {"gpt-4o-2024-08-06"}


def test_an_unchanged_rerun_sends_no_request(pictures, workspace_dir, server):
    workflow = flow(pictures, workspace_dir, OpenAICaption(model="llava", base_url=server.url))
    run_stages(workflow, workspace_dir)
    server.reset()
    report = run_stages(workflow, workspace_dir)[caption_stage(workflow)]
    assert server.received == [] and report.cache_hits == 3 and report.extra == {}


def test_a_refusal_is_an_error_never_a_caption_and_is_asked_again(pictures, workspace_dir, server):
    server.handler = lambda n, body: Answer(text="I'm sorry, I can't help with that.") if n == 1 else None
    workflow = flow(pictures, workspace_dir, OpenAICaption(model="llava", base_url=server.url, parallel=1))
    report = run_stages(workflow, workspace_dir)[caption_stage(workflow)]
    refused = [
        r
        for r in stored(workflow, workspace_dir, caption_stage(workflow)).values()
        if r.props.get("caption_error")
    ]
    assert len(refused) == 1 and "caption" not in refused[0].props
    assert refused[0].props["caption_error"].startswith("refused: I'm sorry") and refused[
        0
    ].reason.startswith(RETRY)
    assert report.extra["refusals"] == 1 and report.kept == 3
    server.reset()
    run_stages(workflow, workspace_dir)
    assert len(server.received) == 1  # only the refused image, and now it gets a caption
    assert all(
        r.props.get("caption") for r in stored(workflow, workspace_dir, caption_stage(workflow)).values()
    )


def test_an_image_the_server_rejects_fails_alone_with_the_servers_message(pictures, workspace_dir, server):
    server.handler = lambda n, body: (
        Answer(status=413, text="image exceeds 20 MB") if "image/png" in str(body) else None
    )
    workflow = flow(pictures, workspace_dir, OpenAICaption(model="llava", base_url=server.url))
    run_stages(workflow, workspace_dir)
    rows = stored(workflow, workspace_dir, caption_stage(workflow))
    assert rows["small.png"].props["caption_error"] == "rejected by the server: 413: image exceeds 20 MB"
    assert rows["big.jpg"].props["caption"] and rows["small.jpg"].props["caption"]


def test_a_missing_key_fails_before_any_request_naming_the_variable(
    pictures, workspace_dir, server, monkeypatch
):
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(StageFailed, match=r"no API key for https://api.openai.com/v1: set \$OPENAI_API_KEY"):
        run_stages(flow(pictures, workspace_dir, GPT4oCaption()), workspace_dir)
    node = OpenAICaption(model="llava", base_url=server.url, api_key_env="MY_SERVER_KEY")
    with pytest.raises(StageFailed, match=r"set \$MY_SERVER_KEY"):
        run_stages(flow(pictures, workspace_dir, node), workspace_dir)
    assert server.received == []
    with pytest.raises(StageFailed, match=r"set \$GEMINI_API_KEY or \$GOOGLE_API_KEY"):
        run_stages(flow(pictures, workspace_dir, GeminiCaption()), workspace_dir)


def test_a_named_key_variable_is_sent_and_a_local_server_needs_none(
    pictures, workspace_dir, server, monkeypatch
):
    monkeypatch.setenv("MY_SERVER_KEY", "sk-local-123")
    run_stages(
        flow(
            pictures,
            workspace_dir,
            OpenAICaption(model="a", base_url=server.url, api_key_env="MY_SERVER_KEY"),
        ),
        workspace_dir,
    )
    assert {r.headers["authorization"] for r in server.received} == {"Bearer sk-local-123"}
    server.reset()
    monkeypatch.delenv("OPENAI_API_KEY")
    run_stages(flow(pictures, workspace_dir, OpenAICaption(model="b", base_url=server.url)), workspace_dir)
    assert len(server.received) == 3  # a local server without a key variable: no key needed


def test_the_key_never_reaches_the_log_the_store_or_the_metadata(pictures, workspace_dir, server, caplog):
    server.script = [Answer(status=500), Answer(raw="not json")]
    workflow = flow(pictures, workspace_dir, GPT4oCaption(base_url=server.url, backoff=0.01))
    with caplog.at_level(logging.DEBUG):
        report = run_stages(workflow, workspace_dir)[caption_stage(workflow)]
    assert report.extra["retries"] == 2 and "retry 1/5" in caplog.text
    meta = metadata.stage_metadata(report)
    assert (
        TEST_KEY not in caplog.text
        and TEST_KEY not in store_text(workspace_dir)
        and TEST_KEY not in repr(meta)
    )
    assert TEST_KEY not in repr(workflow.stages[1].node.fingerprint_params()) + repr(workflow.stages[1].node)


def test_the_runs_metadata_counts_requests_tokens_and_cost(pictures, workspace_dir, server):
    server.script = [Answer(status=429, headers={"retry-after-ms": "50"})]
    workflow = flow(pictures, workspace_dir, GPT4oCaption(base_url=server.url))
    meta = metadata.stage_metadata(run_stages(workflow, workspace_dir)[caption_stage(workflow)])
    assert (meta["requests"], meta["retries"], meta["failures"], meta["refusals"]) == (4, 1, 0, 0)
    assert (meta["prompt_tokens"], meta["completion_tokens"]) == (300, 60)
    assert meta["estimated_cost_usd"] == pytest.approx((300 * 2.50 + 60 * 10.00) / 1e6)
    assert meta["servers"].data == {
        server.url: {"requests": 4, "ok": 3, "failed": 1, "last_error": "429: error 429"}
    }
    unknown = metadata.stage_metadata(
        run_stages(
            flow(pictures, workspace_dir, OpenAICaption(model="my-vlm", base_url=server.url)), workspace_dir
        )["open_ai_caption"]
    )
    assert "estimated_cost_usd" not in unknown


def test_openai_base_url_points_the_node_at_a_local_server(pictures, workspace_dir, server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    run_stages(flow(pictures, workspace_dir, GPT4oCaption()), workspace_dir)
    assert len(server.received) == 3


def test_moving_to_another_server_keeps_the_cache_unless_scoped_to_the_server(
    pictures, workspace_dir, server, second_server
):
    run_stages(
        flow(pictures, workspace_dir, OpenAICaption(model="llava", base_url=server.url)), workspace_dir
    )
    run_stages(
        flow(pictures, workspace_dir, OpenAICaption(model="llava", base_url=second_server.url)), workspace_dir
    )
    assert second_server.received == []
    node = OpenAICaption(model="llava", base_url=second_server.url, cache_scope="server")
    run_stages(flow(pictures, workspace_dir, node), workspace_dir)
    assert len(second_server.received) == 3


def test_max_requests_leaves_the_rest_for_the_next_run(pictures, workspace_dir, server):
    workflow = flow(
        pictures, workspace_dir, OpenAICaption(model="llava", base_url=server.url, max_requests=2, parallel=1)
    )
    report = run_stages(workflow, workspace_dir)[caption_stage(workflow)]
    rows = stored(workflow, workspace_dir, caption_stage(workflow)).values()
    assert len(server.received) == 2 and report.extra["not_sent"] == 1
    waiting = [r for r in rows if "caption" not in r.props]
    assert len(waiting) == 1 and waiting[0].props["caption_error"].startswith("max_requests=2 reached")
    server.reset()
    run_stages(workflow, workspace_dir)
    assert len(server.received) == 1


def test_a_wrong_base_url_fails_the_stage_naming_the_url(pictures, workspace_dir, server):
    node = OpenAICaption(model="llava", base_url="http://127.0.0.1:9/v1", max_retries=1, backoff=0.01)
    with pytest.raises(StageFailed, match=r"no answer from http://127.0.0.1:9/v1 after 2 attempt\(s\)"):
        run_stages(flow(pictures, workspace_dir, node), workspace_dir)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"model": "llava", "base_url": "localhost:8000"}, "is not an http(s) URL"),
        ({"model": "llava", "api_key_env": "sk-abc=def"}, "must name an environment variable"),
        ({"model": "llava", "detail": "medium"}, "detail must be"),
        ({"model": "llava", "parallel": 0}, "parallel must be a positive integer"),
        ({"model": "llava", "cache_scope": "url"}, "cache_scope must be"),
        ({"model": "together_ai/meta-llama/Llama-3.2-11B-Vision"}, "is a litellm name"),
    ],
)
def test_bad_parameters_fail_at_load_time(kwargs, message):
    with pytest.raises(WorkflowError, match=message.replace("(", r"\(").replace(")", r"\)")):
        OpenAICaption(**kwargs)


def test_answers_that_arrived_before_a_stage_stopped_are_kept(pictures, workspace_dir, server):
    server.handler = lambda n, body: Answer(status=401, text="key revoked") if n == 3 else None
    workflow = flow(pictures, workspace_dir, OpenAICaption(model="llava", base_url=server.url, parallel=1))
    with pytest.raises(StageFailed, match="refused the API key"):
        run_stages(workflow, workspace_dir)
    assert (
        sum(
            1
            for r in stored(workflow, workspace_dir, caption_stage(workflow)).values()
            if r.props.get("caption")
        )
        == 2
    )
    server.reset()
    run_stages(workflow, workspace_dir)
    assert len(server.received) == 1  # the two stored before the stop are not asked again
