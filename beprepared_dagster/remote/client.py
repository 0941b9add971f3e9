"""One Chat Completions request, with everything around it: retries with exponential backoff and jitter on
429, 5xx, timeouts, connection errors and malformed answers (honouring `Retry-After`), a request budget,
refusal detection, token counts, and the errors that must stop the whole stage (a rejected key, a wrong URL).

The `openai` SDK does the HTTP (its own retries are off: these are counted and logged here)."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from beprepared_dagster.errors import StageFailed
from beprepared_dagster.remote.routing import ServerPool
from beprepared_dagster.remote.settings import ClientSettings, display_url

MAX_RETRY_AFTER = 600.0
_REFUSAL = re.compile(
    r"^\W*(?:i'?m sorry|i am sorry|sorry,? (?:but )?i\b|i(?:'m| am) (?:unable|not able)"
    r"|i (?:cannot|can ?not|can't|won't)\b|unable to (?:help|assist|caption|describe|comply)|caption not available)"
)


class Fatal(StageFailed):
    """Every further request would fail the same way (a rejected key, an unknown model, no server reachable):
    the stage stops, keeping every result stored so far."""


class Malformed(Exception):
    """A 200 answer that is not a chat completion (invalid JSON, no choices)."""


@dataclass
class Reply:
    """A usable answer."""

    text: str
    model: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class Failure:
    """A request that gave no usable answer. `kind`: "refused" (the model declined, or answered nothing),
    "rejected" (the server refused this input: too large, unsupported), "failed" (retries exhausted),
    "bad_image" (the image could not be read), "budget" (not sent: `max_requests` reached)."""

    reason: str
    kind: str = "failed"


@dataclass
class Stats:
    """What one stage run sent and got back (becomes the materialization's metadata)."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    refusals: int = 0
    rejected: int = 0
    not_sent: int = 0
    truncated: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retry_waits: list[float] = field(default_factory=list)


class ChatClient:
    """Sends requests through a `ServerPool`, within the settings' retry policy and request budget."""

    def __init__(
        self,
        settings: ClientSettings,
        pool: ServerPool,
        stats: Stats,
        log: Any,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.settings, self.pool, self.stats, self.log, self.sleep = settings, pool, stats, log, sleep
        self.rng = rng or random.Random()
        self.unreachable_in_a_row = 0

    def budget_left(self) -> bool:
        limit = self.settings.max_requests
        return limit is None or self.stats.requests < limit

    def not_sent(self) -> Failure:
        """The result of a request left over once `max_requests` is reached."""
        self.stats.not_sent += 1
        return Failure(f"max_requests={self.settings.max_requests} reached: not sent", "budget")

    async def complete(self, body: dict[str, Any]) -> Reply | Failure:
        """The answer to one request body, or why there is none. Raises Fatal when the stage must stop."""
        last, last_url = "", ""
        for attempt in range(self.settings.max_retries + 1):
            if not self.budget_left():
                if not attempt:
                    return self.not_sent()
                return Failure(
                    f"max_requests={self.settings.max_requests} reached before a retry: {last}", "budget"
                )
            if attempt:
                self.stats.retries += 1
            server = self.pool.pick()
            self.stats.requests += 1
            try:
                raw = await server.client.chat.completions.with_raw_response.create(**body)
                reply = _parse(raw.text)
            except Exception as exc:
                outcome = self._classify(exc, server.url)
                self.pool.done(server, ok=not outcome[0], error=outcome[1])
                retriable, error, wait = outcome
                if not retriable:
                    self.stats.rejected += 1
                    return Failure(f"rejected by the server: {error}", "rejected")
                last, last_url = error, server.url
                if attempt < self.settings.max_retries:
                    delay = self._delay(attempt, wait)
                    self.stats.retry_waits.append(delay)
                    self.log.info(
                        f"{display_url(server.url)}: {error}; retry {attempt + 1}/{self.settings.max_retries} "
                        f"in {delay:.1f}s"
                    )
                    await self.sleep(delay)
                continue
            self.pool.done(server, ok=True)
            self.unreachable_in_a_row = 0
            return self._judge(reply)
        return self._exhausted(last, last_url)

    def _judge(self, reply: Reply) -> Reply | Failure:
        self.stats.prompt_tokens += reply.prompt_tokens
        self.stats.completion_tokens += reply.completion_tokens
        refusal = refusal_reason(reply)
        if refusal:
            self.stats.refusals += 1
            return Failure(refusal, "refused")
        self.stats.truncated += reply.finish_reason == "length"
        return reply

    def _exhausted(self, last: str, url: str) -> Failure:
        self.stats.failures += 1
        self.unreachable_in_a_row += 1
        attempts = self.settings.max_retries + 1
        if not self.pool.any_success:
            raise Fatal(
                f"no answer from {display_url(url)} after {attempts} attempt(s): {last}; check base_url and "
                "that the server is running"
            )
        if self.unreachable_in_a_row >= max(10, 2 * self.settings.parallel):
            raise Fatal(
                f"the server(s) stopped answering: {self.unreachable_in_a_row} requests in a row failed after "
                f"{attempts} attempt(s) each (last: {display_url(url)}: {last})"
            )
        return Failure(f"no answer after {attempts} attempt(s): {last}", "failed")

    def _classify(self, exc: Exception, url: str) -> tuple[bool, str, float | None]:
        """(retriable, message, Retry-After seconds) for an attempt's exception; raises Fatal for errors
        every request would hit."""
        import openai

        if isinstance(exc, Malformed):
            return True, f"malformed answer: {exc}", None
        if isinstance(exc, openai.APITimeoutError):
            return True, f"no answer within {self.settings.timeout:g}s (timeout)", None
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            return True, f"connection failed: {type(cause).__name__}: {cause}", None
        if isinstance(exc, openai.APIStatusError):
            status, message = exc.status_code, _server_message(exc)
            if status in (401, 403):
                raise Fatal(f"{display_url(url)} refused the API key ({status}): {message}") from None
            if status == 404:
                raise Fatal(
                    f"{display_url(url)}: not found (404): {message}; check model and base_url"
                ) from None
            if status in (408, 409, 425, 429) or status >= 500:
                return True, f"{status}: {message}", _retry_after(exc.response.headers)
            return False, f"{status}: {message}", None
        raise exc

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER) * (1 + 0.1 * self.rng.random())
        base = min(self.settings.max_backoff, self.settings.backoff * 2**attempt)
        return base * self.rng.uniform(0.5, 1.0)


def refusal_reason(reply: Reply) -> str | None:
    """Why an answer is not a caption: blocked, empty, or a refusal in words (never stored as a caption)."""
    if reply.finish_reason == "content_filter":
        return "refused: blocked by the server's content filter"
    text = reply.text.strip()
    if not text:
        return "refused: empty answer"
    head = text[:200].lower().replace("\u2019", "'")
    if _REFUSAL.match(head) or "caption not available" in head:
        return f"refused: {' '.join(text.split())[:120]}"
    return None


def _parse(body: str) -> Reply:
    try:
        data = json.loads(body)
    except ValueError:
        raise Malformed(f"invalid JSON: {body[:200]!r}") from None
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise Malformed(f"no choices: {body[:200]!r}")
    message = choices[0].get("message") or {}
    content = message.get("content")
    if isinstance(content, list):  # some servers answer in content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    finish = "content_filter" if message.get("refusal") else choices[0].get("finish_reason")
    text = content if isinstance(content, str) and not message.get("refusal") else ""
    return Reply(text, data.get("model"), finish, *_usage(data.get("usage")))


def _usage(usage: Any) -> tuple[int, int]:
    if not isinstance(usage, dict):
        return 0, 0
    try:
        return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    except (TypeError, ValueError):
        return 0, 0


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
        if isinstance(inner, str):
            return inner[:300]
    try:
        return exc.response.text[:300] or exc.message
    except Exception:
        return str(exc.message)[:300]


def _retry_after(headers: Any) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    from email.utils import parsedate_to_datetime

    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(float(value) / divisor, 0.0)
        except ValueError:
            pass
        try:
            import time

            return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
        except (TypeError, ValueError):
            continue
    return None
