"""The Chat Completions client against a real HTTP server on 127.0.0.1: retries and their spacing (backoff
with jitter, Retry-After), timeouts, malformed answers, refusals, rejections, a wrong URL or key stopping the
stage early, the request budget, concurrency, usage counts, and the spread over two servers with one failing.

Does not cover the stage around it (test_api_caption.py, test_llm_text.py) or a real model server
(test_transformers_serve.py)."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from beprepared_dagster.remote.client import Failure, Fatal, Reply
from beprepared_dagster.remote.driver import Job, RunResult, run_jobs
from beprepared_dagster.remote.routing import Server, ServerPool
from beprepared_dagster.remote.settings import ClientSettings
from beprepared_dagster_tests.remote.conftest import TEST_KEY
from beprepared_dagster_tests.remote.fake_server import Answer, answer_for

LOG = logging.getLogger("remote-test")


def settings(*urls: str, **changes) -> ClientSettings:
    base = ClientSettings(base_urls=urls, key_envs=("OPENAI_API_KEY",), key_required=True, parallel=4,
                          timeout=5.0, max_retries=3, backoff=0.05)  # fmt: skip
    return replace(base, **changes)


def body(text: str) -> dict:
    return {"model": "test-model", "messages": [{"role": "user", "content": text}], "max_tokens": 20}


def run(cfg: ClientSettings, texts: list[str]) -> tuple[dict[int, list], RunResult]:
    got: dict[int, list] = {}
    result = RunResult(stats=__import__("beprepared_dagster.remote.client", fromlist=["Stats"]).Stats())
    run_jobs([Job(i, [body(t)]) for i, t in enumerate(texts)], cfg, TEST_KEY, LOG, got.update, result=result)
    return got, result


def gaps(server) -> list[float]:
    times = [r.at for r in server.received]
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def test_answers_come_back_per_job_with_the_model_prompt_and_key_sent(server):
    got, result = run(settings(server.url), ["one", "two", "three"])
    assert {i: r[0].text for i, r in got.items()} == {
        0: answer_for("one"),
        1: answer_for("two"),
        2: answer_for("three"),
    }
    assert {r.body["model"] for r in server.received} == {"test-model"}
    assert all(r.headers["authorization"] == f"Bearer {TEST_KEY}" for r in server.received)
    assert (result.stats.requests, result.stats.prompt_tokens, result.stats.completion_tokens) == (3, 300, 60)


def test_429_waits_for_retry_after_then_succeeds(server, caplog):
    server.script = [Answer(status=429, headers={"retry-after": "1"})]
    with caplog.at_level(logging.INFO):
        got, result = run(settings(server.url, parallel=1), ["x"])
    assert isinstance(got[0][0], Reply) and result.stats.retries == 1
    assert gaps(server)[0] >= 1.0  # Retry-After wins over the 0.05 s backoff
    assert "429" in caplog.text and "retry 1/3" in caplog.text


def test_5xx_backs_off_exponentially_with_jitter(server):
    server.script = [Answer(status=500), Answer(status=502), Answer(status=503)]
    got, result = run(settings(server.url, parallel=1, backoff=0.1), ["x"])
    assert isinstance(got[0][0], Reply) and result.stats.retries == 3
    waits = result.stats.retry_waits
    for attempt, wait in enumerate(waits):  # 0.1, 0.2, 0.4, each scaled by a random factor in [0.5, 1]
        assert 0.5 * 0.1 * 2**attempt <= wait <= 0.1 * 2**attempt
    assert len(set(waits)) == 3
    assert all(gap >= wait for gap, wait in zip(gaps(server), waits, strict=True))


def test_a_slow_answer_times_out_and_is_retried(server, caplog):
    server.script = [Answer(delay=1.5)]
    with caplog.at_level(logging.INFO):
        got, result = run(settings(server.url, parallel=1, timeout=0.3), ["x"])
    assert isinstance(got[0][0], Reply) and result.stats.retries == 1
    assert "timeout" in caplog.text


def test_malformed_answers_are_retried_and_logged_with_the_first_200_characters(server, caplog):
    junk = "<html>gateway says no" + "x" * 400
    server.script = [Answer(raw=junk), Answer(raw='{"id": "x", "choices": []}')]
    with caplog.at_level(logging.INFO):
        got, result = run(settings(server.url, parallel=1), ["x"])
    assert isinstance(got[0][0], Reply) and result.stats.retries == 2
    assert junk[:200] in caplog.text and junk[:201] not in caplog.text
    assert "no choices" in caplog.text


@pytest.mark.parametrize(
    "answer",
    [
        Answer(text="I'm sorry, but I can't help with that."),
        Answer(text="I’m unable to describe this image."),
        Answer(text="Caption not available"),
        Answer(text="   "),
        Answer(text="a perfectly fine caption", finish_reason="content_filter"),
    ],
)
def test_refusals_are_failures_not_captions(server, answer):
    server.script = [answer]
    got, result = run(settings(server.url), ["x"])
    assert isinstance(got[0][0], Failure) and got[0][0].kind == "refused"
    assert result.stats.refusals == 1 and result.stats.retries == 0


def test_a_caption_that_starts_like_a_sentence_is_kept(server):
    server.script = [Answer(text="In the photo, a sorry-looking dog sits on a porch.")]
    got, _ = run(settings(server.url), ["x"])
    assert isinstance(got[0][0], Reply)


def test_an_input_the_server_rejects_fails_alone_with_the_servers_message(server):
    server.handler = lambda n, b: Answer(status=400, text="image too large") if "bad" in str(b) else None
    got, result = run(settings(server.url), ["good", "bad", "good too"])
    assert isinstance(got[0][0], Reply) and isinstance(got[2][0], Reply)
    assert got[1][0].kind == "rejected" and "image too large" in got[1][0].reason
    assert len(server.received) == 3 and result.stats.rejected == 1


def test_a_rejected_key_stops_the_stage_without_showing_the_key(server):
    server.handler = lambda n, b: Answer(status=401, text="Incorrect API key provided")
    with pytest.raises(Fatal) as info:
        run(settings(server.url, parallel=1), ["a", "b", "c", "d"])
    assert "refused the API key (401)" in str(info.value) and TEST_KEY not in str(info.value)
    assert len(server.received) == 1


def test_a_wrong_base_url_fails_after_the_first_requests_retries_not_after_every_image():
    cfg = settings("http://127.0.0.1:9/v1", parallel=2, max_retries=1, backoff=0.01)
    result_holder = RunResult(
        stats=__import__("beprepared_dagster.remote.client", fromlist=["Stats"]).Stats()
    )
    with pytest.raises(Fatal, match=r"no answer from http://127.0.0.1:9/v1 after 2 attempt\(s\): connection"):
        run_jobs([Job(i, [body("x")]) for i in range(500)], cfg, TEST_KEY, LOG, lambda b: None,
                 result=result_holder)  # fmt: skip
    assert result_holder.stats.requests <= 4  # parallel × attempts, not 500 × attempts


def test_max_requests_sends_that_many_and_marks_the_rest_not_sent(server, caplog):
    with caplog.at_level(logging.INFO):
        got, result = run(settings(server.url, max_requests=4), [f"t{i}" for i in range(10)])
    assert len(server.received) == 4 and result.stats.not_sent == 6
    assert sum(isinstance(r[0], Reply) for r in got.values()) == 4
    assert all(r[0].kind == "budget" for r in got.values() if isinstance(r[0], Failure))
    assert "max_requests=4 reached" in caplog.text


def test_parallel_bounds_the_requests_in_flight(server):
    server.delay = 0.2
    run(settings(server.url, parallel=3), [f"t{i}" for i in range(9)])
    assert server.max_in_flight == 3


def test_two_servers_one_failing_everything_is_answered_and_the_failing_one_rested(
    server, second_server, caplog
):
    second_server.handler = lambda n, b: Answer(status=503, text="overloaded")
    cfg = settings(server.url, second_server.url, parallel=4, max_retries=3, rest_after=3, rest_seconds=60)
    with caplog.at_level(logging.INFO):
        got, result = run(cfg, [f"t{i}" for i in range(30)])
    assert len(got) == 30 and all(isinstance(r[0], Reply) for r in got.values())
    assert (
        len(second_server.received) <= 3 + 4
    )  # rested after 3 failures in a row (+ those already in flight)
    assert len(server.received) == 30
    summary = result.servers[second_server.url]
    assert summary["rested"] == 1 and summary["ok"] == 0
    assert f"server {second_server.url} rested for 60s after 3 failures in a row" in caplog.text


def test_least_in_flight_routing_sends_to_the_idle_server():
    pool = ServerPool([Server("a"), Server("b")], rest_after=3, rest_seconds=30, log=LOG)
    first, second = pool.pick(), pool.pick()
    assert {first.url, second.url} == {"a", "b"}
    pool.done(first, ok=True)
    assert pool.pick() is first  # the other still has one in flight


def test_a_lone_server_is_never_rested():
    pool = ServerPool([Server("only")], rest_after=1, rest_seconds=30, log=LOG, clock=lambda: 0.0)
    for _ in range(5):
        pool.done(pool.pick(), ok=False, error="down")
    assert pool.servers[0].times_rested == 0


def test_an_image_out_of_retries_fails_alone_and_the_others_go_on(server):
    server.handler = lambda n, b: Answer(status=500, text="model crashed") if "doomed" in str(b) else None
    got, result = run(settings(server.url, max_retries=2, backoff=0.02), ["a", "doomed", "b", "c"])
    assert [isinstance(got[i][0], Reply) for i in range(4)] == [True, False, True, True]
    assert (
        got[1][0].kind == "failed" and got[1][0].reason == "no answer after 3 attempt(s): 500: model crashed"
    )
    assert result.stats.failures == 1 and result.stats.retries == 2
