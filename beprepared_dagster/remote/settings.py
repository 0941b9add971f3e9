"""Where a remote stage sends its requests and with what limits: servers, the API key's variable, concurrency,
timeouts and retries. Keys are read from the environment when a stage starts, never taken as parameters, and
never written anywhere (fingerprints, logs, metadata, the store)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from beprepared_dagster.errors import StageFailed

OPENAI_URL = "https://api.openai.com/v1"
GEMINI_URL = "https://generativelanguage.googleapis.com/v1beta/openai/"
HOSTED = ("api.openai.com", "generativelanguage.googleapis.com")
NO_KEY = "no-key"  # what a local server that checks no key receives (the SDK needs a non-empty value)
CACHE_SCOPES = ("model", "server")


@dataclass(frozen=True)
class ClientSettings:
    """Everything the client needs for one stage run.

    Attributes:
        base_urls: one or more servers speaking Chat Completions (".../v1").
        key_envs: environment variables tried in order for the API key.
        key_required: fail the stage before any request when none of `key_envs` is set.
        parallel: requests in flight at once (all servers together).
        timeout: seconds per request attempt.
        max_retries: further attempts after a retriable failure (429, 5xx, timeout, connection, malformed).
        backoff: seconds before the first retry; doubled per retry, with jitter, capped at `max_backoff`.
        max_requests: requests (attempts) this run may send; None: no limit.
        rest_after: failures in a row after which a server is rested (only while another one is up).
        rest_seconds: how long a rested server gets no requests.
    """

    base_urls: tuple[str, ...]
    key_envs: tuple[str, ...]
    key_required: bool
    parallel: int = 8
    timeout: float = 60.0
    max_retries: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0
    max_requests: int | None = None
    rest_after: int = 3
    rest_seconds: float = 30.0

    def api_key(self, who: str) -> str:
        """The key from the first variable that is set; a clear StageFailed (naming the variables, never a
        value) when a key is required and none is set."""
        for name in self.key_envs:
            value = os.environ.get(name, "").strip()
            if value:
                return value
        if self.key_required:
            names = " or ".join(f"${n}" for n in self.key_envs)
            raise StageFailed(
                f"{who}: no API key for {', '.join(map(display_url, self.base_urls))}: set {names} "
                "(keys are read from the environment only)"
            )
        return NO_KEY


def check_base_url(value: Any) -> tuple[str, ...] | None:
    """`base_url`: None, a URL, or a non-empty list of URLs (http or https)."""
    if value is None:
        return None
    urls = [value] if isinstance(value, str) else value
    if not isinstance(urls, list | tuple) or not urls:
        raise ValueError(f"base_url must be a URL or a list of URLs, got {value!r}")
    for url in urls:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url {url!r} is not an http(s) URL like 'http://127.0.0.1:8000/v1'")
    if len(set(urls)) != len(urls):
        raise ValueError(f"base_url lists a server twice: {urls!r}")
    return tuple(u.rstrip("/") for u in urls)


def resolve_base_urls(given: tuple[str, ...] | None, default: str, use_openai_env: bool) -> tuple[str, ...]:
    """The node's `base_url`, else `$OPENAI_BASE_URL` (for OpenAI-protocol nodes, as the SDK does), else the
    provider's URL."""
    if given:
        return given
    env = os.environ.get("OPENAI_BASE_URL", "").strip() if use_openai_env else ""
    return (check_base_url(env) or (default,)) if env else (default.rstrip("/"),)


def key_envs_for(api_key_env: str | Sequence[str] | None, defaults: tuple[str, ...]) -> tuple[str, ...]:
    if api_key_env is None:
        return defaults
    names = (api_key_env,) if isinstance(api_key_env, str) else tuple(api_key_env)
    if not names or not all(isinstance(n, str) and n.strip() and "=" not in n for n in names):
        raise ValueError(
            f"api_key_env must name an environment variable (e.g. 'TOGETHER_API_KEY'), got {api_key_env!r}; "
            "never pass the key itself"
        )
    return names


def is_hosted(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return any(host == h or host.endswith("." + h) for h in HOSTED)


def display_url(url: str) -> str:
    """The URL without any user:password part, for messages and metadata."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
