"""Captioners behind an HTTP API, all on one Chat Completions client (`beprepared_dagster.remote`):
`GPT4oCaption` (OpenAI), `GeminiCaption` (Gemini's OpenAI-compatible endpoint) and `OpenAICaption` (any
server that speaks the protocol with images: vLLM, Ollama, LM Studio, llama.cpp, `transformers serve`).

Each image goes as a data URL in its real format, downscaled to `image_max_edge` when larger
(`remote/images.py`). A refusal, an empty answer or a content-filter stop is recorded as `caption_error`,
never stored as a caption, and asked again on the next run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from beprepared_dagster.nodes.base import Image, NodeContext, Outcome
from beprepared_dagster.remote.client import Failure, Reply
from beprepared_dagster.remote.node import Plan, RemoteNode
from beprepared_dagster.remote.settings import GEMINI_URL

DETAILS = ("low", "high", "auto")
DEFAULT_PROMPT = (
    "Write a caption for this image for training a text-to-image model: describe the subject, composition, "
    "lighting, colours and style in plain prose, in one paragraph. Answer with the caption only. If you "
    "cannot caption this image, answer exactly: Caption not available"
)


class ApiCaptionNode(RemoteNode):
    """Base of the API captioners: one request per image with the prompt and the image.

    Args:
        target_prop: the property the caption goes to.
        prompt: the instruction sent with the image (default: a training-caption instruction that asks for
            "Caption not available" when the model will not caption).
        instructions: text appended to the prompt after a blank line, as in the original.
        system: an optional system message.
        detail: "low", "high" or "auto" (OpenAI's image detail; other servers ignore it); None: not sent.
        image_max_edge: images with a longer edge are downscaled to it and sent as JPEG; None: as they are.
    """

    description: ClassVar[str] = "Images captioned by {model} through a Chat Completions API."
    default_parallel: ClassVar[int] = 8

    def _setup_caption(
        self,
        target_prop: str,
        prompt: str | None,
        instructions: str | None,
        system: str | None,
        detail: str | None,
        image_max_edge: int | None,
    ) -> None:
        if not isinstance(target_prop, str) or not target_prop.isidentifier():
            raise ValueError(f"target_prop must be a property name, got {target_prop!r}")
        for name, value in (("prompt", prompt), ("instructions", instructions), ("system", system)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{name} must be a non-empty string or None, got {value!r}")
        if detail is not None and detail not in DETAILS:
            raise ValueError(f"detail must be 'low', 'high', 'auto' or None, got {detail!r}")
        if image_max_edge is not None and (
            isinstance(image_max_edge, bool) or not isinstance(image_max_edge, int) or image_max_edge < 16
        ):
            raise ValueError(f"image_max_edge must be an integer >= 16 or None, got {image_max_edge!r}")
        self.target_prop, self.system, self.detail = target_prop, system, detail
        self.image_max_edge = image_max_edge
        base = prompt if prompt is not None else DEFAULT_PROMPT
        self.full_prompt = f"{base}\n\n{instructions}" if instructions else base

    def plan(self, image: Image, ctx: NodeContext) -> Plan:
        object_id = image["objectid"]
        return Plan({"objectid": object_id}, [lambda: self.request(ctx.objects.read(object_id))])

    def request(self, data: bytes) -> dict[str, Any]:
        """The Chat Completions body for one image's bytes."""
        from beprepared_dagster.remote.images import data_url

        picture: dict[str, Any] = {"url": data_url(data, self.image_max_edge)}
        if self.detail:
            picture["detail"] = self.detail
        content = [{"type": "text", "text": self.full_prompt}, {"type": "image_url", "image_url": picture}]
        messages: list[dict[str, Any]] = [{"role": "system", "content": self.system}] if self.system else []
        messages.append({"role": "user", "content": content})
        return {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }

    def outcome(self, image: Image, results: list[Reply | Failure]) -> Outcome:
        result = results[0]
        if isinstance(result, Failure):
            return self.failed(result.reason, result.kind)
        return Outcome.keep(
            **{self.target_prop: result.text.strip(), "caption_model": result.model or self.model},
            caption_error=None,
        )


class GPT4oCaption(ApiCaptionNode):
    """Caption each image with OpenAI's GPT-4o (`$OPENAI_API_KEY`; `$OPENAI_BASE_URL` when set).
    Parameters as on `ApiCaptionNode` and `RemoteNode`."""

    def __init__(
        self,
        target_prop: str = "caption",
        prompt: str | None = None,
        instructions: str | None = None,
        parallel: int = 8,
        model: str = "gpt-4o-2024-08-06",
        base_url: str | Sequence[str] | None = None,
        api_key_env: str | None = None,
        system: str | None = None,
        max_tokens: int = 300,
        temperature: float = 0.6,
        detail: str | None = None,
        image_max_edge: int | None = 1024,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_requests: int | None = None,
        price_per_1k_tokens: Any = None,
        cache_scope: str = "model",
        on_error: str = "keep",
    ) -> None:
        self._setup_remote(
            model, base_url, api_key_env, parallel, max_tokens, temperature, timeout, max_retries, backoff,
            max_requests, price_per_1k_tokens, cache_scope, on_error,
        )  # fmt: skip
        self._setup_caption(target_prop, prompt, instructions, system, detail, image_max_edge)


class GeminiCaption(GPT4oCaption):
    """Caption each image with Google Gemini through its OpenAI-compatible endpoint (`$GEMINI_API_KEY` or
    `$GOOGLE_API_KEY`; `$OPENAI_BASE_URL` does not apply). Parameters as on `ApiCaptionNode` and
    `RemoteNode`."""

    default_base_url: ClassVar[str] = GEMINI_URL
    default_key_envs: ClassVar[tuple[str, ...]] = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    use_openai_env: ClassVar[bool] = False

    def __init__(
        self,
        target_prop: str = "caption",
        prompt: str | None = None,
        instructions: str | None = None,
        parallel: int = 2,
        model: str = "gemini-2.0-flash",
        base_url: str | Sequence[str] | None = None,
        api_key_env: str | None = None,
        system: str | None = None,
        max_tokens: int = 300,
        temperature: float = 0.5,
        detail: str | None = None,
        image_max_edge: int | None = 1024,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 2.0,
        max_requests: int | None = None,
        price_per_1k_tokens: Any = None,
        cache_scope: str = "model",
        on_error: str = "keep",
    ) -> None:
        super().__init__(
            target_prop, prompt, instructions, parallel, model, base_url, api_key_env, system, max_tokens,
            temperature, detail, image_max_edge, timeout, max_retries, backoff, max_requests,
            price_per_1k_tokens, cache_scope, on_error,
        )  # fmt: skip


class OpenAICaption(GPT4oCaption):
    """Caption each image with any model behind a Chat Completions server that takes images (vLLM, Ollama,
    LM Studio, llama.cpp's llama-server, `transformers serve`, Azure, OpenRouter…).

    Args:
        model: the model's name on the server (required).
        base_url: the server (".../v1") or a list of servers; None: `$OPENAI_BASE_URL`, else OpenAI.
        api_key_env: the variable with the key; without it a local server gets `$OPENAI_API_KEY` if set,
            else a placeholder (servers started without a key accept anything).

    The other parameters are as on `ApiCaptionNode` and `RemoteNode`.
    """

    def __init__(
        self,
        model: str,
        base_url: str | Sequence[str] | None = None,
        api_key_env: str | None = None,
        prompt: str | None = None,
        target_prop: str = "caption",
        instructions: str | None = None,
        parallel: int = 8,
        system: str | None = None,
        max_tokens: int = 300,
        temperature: float = 0.6,
        detail: str | None = None,
        image_max_edge: int | None = 1024,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_requests: int | None = None,
        price_per_1k_tokens: Any = None,
        cache_scope: str = "model",
        on_error: str = "keep",
    ) -> None:
        super().__init__(
            target_prop, prompt, instructions, parallel, model, base_url, api_key_env, system, max_tokens,
            temperature, detail, image_max_edge, timeout, max_retries, backoff, max_requests,
            price_per_1k_tokens, cache_scope, on_error,
        )  # fmt: skip
