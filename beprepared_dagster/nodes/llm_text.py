"""LLM text nodes on the Chat Completions client (`beprepared_dagster.remote`): `LLMCaptionTransform` writes
a caption from other properties (e.g. several captioners' captions and the tags), `LLMCaptionVariations`
writes paraphrases of a caption for caption augmentation.

Both are content-addressed by the text they send: two images that render the same prompt share one answer,
and an image whose inputs did not change is never sent again."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from beprepared_dagster.nodes.base import Image, NodeContext, Outcome
from beprepared_dagster.remote.client import Failure, Reply
from beprepared_dagster.remote.node import Plan, RemoteNode
from beprepared_dagster.remote.templates import PromptTemplate, check_fields

VARIATIONS_SYSTEM = (
    "You are an unbiased text transformation tool. You rewrite image captions for training text-to-image "
    "models. You never refuse, never comment and never add details that are not in the caption."
)
VARIATIONS_PROMPT = (
    "Rewrite the caption below with different phrasing and sentence structure, keeping every detail and "
    "its meaning. Output only the new caption."
)


class _TextNode(RemoteNode):
    """A remote node that sends text only."""

    def _setup_text(self, target_prop: str, system: str | None) -> None:
        if not isinstance(target_prop, str) or not target_prop.isidentifier():
            raise ValueError(f"target_prop must be a property name, got {target_prop!r}")
        if system is not None and (not isinstance(system, str) or not system.strip()):
            raise ValueError(f"system must be a non-empty string or None, got {system!r}")
        self.target_prop, self.system = target_prop, system

    def body(self, text: str, system: str | None) -> dict[str, Any]:
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": text})
        return {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }


class LLMCaptionTransform(_TextNode):
    """Write `target_prop` with an LLM from a prompt built from each image's properties.

    Args:
        model: the model's name on the server (required).
        prompt: a template over properties (`"Tags: {tags}\\nCaptions: {caption_a} / {caption_b}"`), or a
            function of the image returning the prompt (as in the original). A template reads only the
            properties it names, and one naming a property no stage above sets fails when the workflow loads.
        target_prop: the property the answer goes to.
        system: an optional system message.

    The other parameters are as on `RemoteNode`.
    """

    description: ClassVar[str] = "Images whose {target_prop} was written by {model} from a prompt template."

    def __init__(
        self,
        model: str,
        prompt: str | Callable[[Image], str],
        target_prop: str = "caption",
        parallel: int = 20,
        temperature: float = 0.5,
        system: str | None = None,
        base_url: str | Sequence[str] | None = None,
        api_key_env: str | None = None,
        max_tokens: int = 500,
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
        self._setup_text(target_prop, system)
        self.template = None if callable(prompt) else PromptTemplate(prompt, "prompt")
        self.prompt_fn = prompt if callable(prompt) else None
        self.reads = self.template.fields if self.template else None

    def check_upstream(self, stage: Any) -> None:
        """At load time: every property the template names is set by a stage above."""
        if self.template is not None:
            check_fields(stage, self.template.fields, "prompt")

    def plan(self, image: Image, ctx: NodeContext) -> Plan | Outcome:
        if self.template is not None:
            if all(image.get(f) in (None, "", [], {}) for f in self.template.fields):
                return self.failed(f"nothing to send: {', '.join(self.template.fields)} empty or missing")
            text = self.template.render(image)
        else:
            try:
                text = self.prompt_fn(image)  # type: ignore[misc]
            except Exception as exc:
                return self.failed(f"prompt function failed: {type(exc).__name__}: {exc}")
            if not isinstance(text, str) or not text.strip():
                return self.failed(f"prompt function returned {text!r}, not a prompt")
        return Plan({"prompt": text}, [self.body(text, self.system)])

    def outcome(self, image: Image, results: list[Reply | Failure]) -> Outcome:
        result = results[0]
        if isinstance(result, Failure):
            return self.failed(result.reason, result.kind)
        return Outcome.keep(
            **{self.target_prop: result.text.strip(), "caption_model": result.model or self.model},
            caption_error=None,
        )


class LLMCaptionVariations(_TextNode):
    """Write `variations` paraphrases of each image's caption, as the list `<target_prop>_variations`:
    the caption first, then its paraphrases. Save exports them with `caption_prop="caption_variations"`:
    `multi_caption="lines"` (one file, a caption per line), `"files"` (an image copy per caption) or
    `"first"`. The dataset does not grow; `target_prop` itself is left as it is.

    Args:
        target_prop: the caption to paraphrase; images without one are passed on untouched.
        variations: paraphrases per caption (each a request; identical answers count once).
        instructions: extra instructions sent with every request (e.g. "keep the trigger word first").
        model: the model's name on the server (default: OpenAI's gpt-4o-mini).

    The other parameters are as on `RemoteNode`.
    """

    writes: ClassVar[tuple[str, ...]] = ("{target_prop}_variations", "caption_error")
    description: ClassVar[str] = "Images with {variations} paraphrases of {target_prop} by {model}."

    def __init__(
        self,
        target_prop: str = "caption",
        variations: int = 2,
        instructions: str | None = None,
        parallel: int = 20,
        temperature: float = 0.7,
        model: str = "gpt-4o-mini",
        base_url: str | Sequence[str] | None = None,
        api_key_env: str | None = None,
        max_tokens: int = 500,
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
        self._setup_text(target_prop, VARIATIONS_SYSTEM)
        if isinstance(variations, bool) or not isinstance(variations, int) or not 1 <= variations <= 20:
            raise ValueError(f"variations must be an integer from 1 to 20, got {variations!r}")
        if instructions is not None and (not isinstance(instructions, str) or not instructions.strip()):
            raise ValueError(f"instructions must be a non-empty string or None, got {instructions!r}")
        self.variations, self.instructions = variations, instructions
        self.variations_prop = f"{target_prop}_variations"
        self.reads = (target_prop,)

    def prompt(self, caption: str) -> str:
        extra = f"\n\nAdditional instructions: {self.instructions}" if self.instructions else ""
        return f"{VARIATIONS_PROMPT}{extra}\n\nCaption: {caption}"

    def source(self, image: Image) -> str | None:
        """The caption to paraphrase (the first of a list), or None."""
        caption = image.get(self.target_prop)
        if isinstance(caption, list | tuple):
            caption = next((c for c in caption if isinstance(c, str) and c.strip()), None)
        return caption.strip() if isinstance(caption, str) and caption.strip() else None

    def plan(self, image: Image, ctx: NodeContext) -> Plan | Outcome:
        caption = self.source(image)
        if caption is None:
            return Outcome.keep()
        return Plan({"caption": caption}, [self.body(self.prompt(caption), self.system)] * self.variations)

    def outcome(self, image: Image, results: list[Reply | Failure]) -> Outcome:
        failed = next((r for r in results if isinstance(r, Failure)), None)
        if failed is not None:
            return self.failed(failed.reason, failed.kind)
        texts = [self.source(image) or ""] + [r.text.strip() for r in results if isinstance(r, Reply)]
        return Outcome.keep(**{self.variations_prop: list(dict.fromkeys(texts))}, caption_error=None)
