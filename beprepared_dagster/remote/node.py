"""`RemoteNode`: the base of nodes whose work is a Chat Completions request (API captioners, LLM text nodes).

A remote node only describes the work: for each image, the requests to send (`plan`) and what to keep from
the answers (`outcome`). The stage (`orchestration/stage_remote.py`) looks every image up in the cache first,
reads the API key only when some image needs a request, sends the requests through `remote.driver` and stores
results as they arrive.

Cache key: the node's fingerprint (type, version, model, prompt, generation parameters, never a URL or a
key) and the plan's `key` (the image's object id, or the rendered prompt for text nodes). With
`cache_scope="server"` the servers' URLs join the fingerprint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from beprepared_dagster.nodes.base import Image, ImageNode, NodeContext, Outcome
from beprepared_dagster.remote import pricing
from beprepared_dagster.remote.client import Failure, Reply
from beprepared_dagster.remote.driver import Body
from beprepared_dagster.remote.settings import (
    CACHE_SCOPES,
    OPENAI_URL,
    ClientSettings,
    check_base_url,
    is_hosted,
    key_envs_for,
    resolve_base_urls,
)

ON_ERROR = ("keep", "reject")


@dataclass
class Plan:
    """The requests for one image: `key` (JSON-able) identifies its input in the cache; images with equal
    keys share one computation."""

    key: Any
    bodies: Sequence[Body]


class RemoteNode(ImageNode):
    """Base of the remote nodes. Subclasses call `_setup_remote` and implement `plan` and `outcome`.

    Args:
        model: the model name the server knows.
        base_url: a server's URL (".../v1"), or a list of them to spread requests over; None: the provider's
            (for OpenAI-protocol nodes `$OPENAI_BASE_URL` first, as the SDK does).
        api_key_env: the environment variable holding the key (default: the provider's); required when given.
        parallel: requests in flight at once, all servers together.
        max_tokens: the longest answer, in tokens.
        temperature: sampling temperature.
        timeout: seconds per request attempt.
        max_retries: further attempts after a 429, 5xx, timeout, connection error or malformed answer.
        backoff: seconds before the first retry (doubled per retry, with jitter; `Retry-After` wins).
        max_requests: requests this run may send (attempts count); the images left over wait for the next run.
        price_per_1k_tokens: USD per 1,000 tokens, or a (prompt, completion) pair, for the cost estimate.
        cache_scope: "model" (any server with the same model shares results) or "server" (the URLs are part
            of the cache key).
        on_error: "keep" an image whose request failed (with `caption_error`), or "reject" it.
    """

    reads: ClassVar[tuple[str, ...] | None] = ("objectid",)
    writes: ClassVar[tuple[str, ...]] = ("{target_prop}", "caption_model", "caption_error")
    # Where and how fast requests go does not change results.
    fingerprint_exclude: ClassVar[tuple[str, ...]] = (
        "base_url",
        "api_key_env",
        "parallel",
        "timeout",
        "max_retries",
        "backoff",
        "max_requests",
        "price_per_1k_tokens",
        "cache_scope",
    )
    default_base_url: ClassVar[str] = OPENAI_URL
    default_key_envs: ClassVar[tuple[str, ...]] = ("OPENAI_API_KEY",)
    use_openai_env: ClassVar[bool] = True  # with no base_url, honour $OPENAI_BASE_URL

    def _setup_remote(
        self,
        model: str,
        base_url: str | Sequence[str] | None,
        api_key_env: str | Sequence[str] | None,
        parallel: int,
        max_tokens: int,
        temperature: float,
        timeout: float,
        max_retries: int,
        backoff: float,
        max_requests: int | None,
        price_per_1k_tokens: Any,
        cache_scope: str,
        on_error: str = "keep",
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be the model's name on the server, got {model!r}")
        if model.startswith("together_ai/"):
            raise ValueError(
                f"model={model!r} is a litellm name; use model={model.split('/', 1)[1]!r}, "
                "base_url='https://api.together.xyz/v1', api_key_env='TOGETHER_API_KEY'"
            )
        _positive_int("parallel", parallel)
        _positive_int("max_tokens", max_tokens)
        _positive_int("max_requests", max_requests, allow_none=True)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        for name, value in (("timeout", timeout), ("backoff", backoff), ("temperature", temperature)):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or value < 0
                or (name == "timeout" and value == 0)
            ):
                raise ValueError(
                    f"{name} must be a number{' > 0' if name == 'timeout' else ' >= 0'}, got {value!r}"
                )
        if cache_scope not in CACHE_SCOPES:
            raise ValueError(f"cache_scope must be 'model' or 'server', got {cache_scope!r}")
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be 'keep' or 'reject', got {on_error!r}")
        self.model, self.base_urls = model, check_base_url(base_url)
        self.key_envs = key_envs_for(api_key_env, self.default_key_envs)
        self.key_named = api_key_env is not None
        self.parallel, self.max_tokens, self.temperature = parallel, max_tokens, float(temperature)
        self.timeout, self.max_retries, self.backoff = float(timeout), max_retries, float(backoff)
        self.max_requests, self.price = max_requests, pricing.check_price(price_per_1k_tokens)
        self.cache_scope, self.on_error = cache_scope, on_error

    def fingerprint_params(self) -> dict[str, Any]:
        params = super().fingerprint_params()
        if self.cache_scope == "server":
            params["servers"] = list(self.servers())
        return params

    def servers(self) -> tuple[str, ...]:
        return resolve_base_urls(self.base_urls, self.default_base_url, self.use_openai_env)

    def client_settings(self) -> ClientSettings:
        servers = self.servers()
        return ClientSettings(
            base_urls=servers,
            key_envs=self.key_envs,
            key_required=self.key_named or any(is_hosted(u) for u in servers),
            parallel=self.parallel,
            timeout=self.timeout,
            max_retries=self.max_retries,
            backoff=self.backoff,
            max_requests=self.max_requests,
        )

    def estimated_cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        return pricing.estimate(self.model, prompt_tokens, completion_tokens, self.price)

    def plan(self, image: Image, ctx: NodeContext) -> Plan | Outcome:
        """The requests for an image, or its outcome when it needs none (e.g. nothing to rewrite)."""
        raise NotImplementedError

    def outcome(self, image: Image, results: list[Reply | Failure]) -> Outcome:
        """The image's outcome from its answers (aligned with the plan's bodies)."""
        raise NotImplementedError

    def process(self, images: list[Image], ctx: NodeContext) -> list[Outcome]:
        raise TypeError(f"{type(self).__name__} sends requests through orchestration/stage_remote.py")

    def failed(self, reason: str, kind: str = "failed") -> Outcome:
        """An image without a result: never cached (retried on the next run); a bad image is rejected."""
        if kind == "bad_image":
            return Outcome.reject(reason)
        if self.on_error == "reject":
            outcome = Outcome.reject(f"caption failed: {reason}")
        else:
            outcome = Outcome.keep(caption_error=reason)
        outcome.cache = False
        return outcome


def _positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"{name} must be a positive integer{' or None' if allow_none else ''}, got {value!r}"
        )
