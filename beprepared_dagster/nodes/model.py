"""Model nodes: per-image nodes whose work runs on a local model through `beprepared_dagster.models`.

A model node only describes the work: which checkpoint (`model_spec`), which backend class runs it on one
device (`backend`, an import path), the backend's JSON-able arguments, per-image inputs, and how a result
becomes an outcome. The stage executor (`orchestration/stage_model.py`) looks every image up in the cache
first and touches the runtime only when some image needs computing, so a fully cached stage never resolves,
downloads or loads the model.

`CaptionNode` is the base of every local captioner: `prompt` / `instructions` as in the original, generation
parameters, per-image seeds, `caption_model` recorded beside each caption, and failures recorded as
`caption_error` (never cached, retried on the next run).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, ClassVar

from beprepared_dagster.models.api import DeviceSettings, ItemError, ModelSpec, ResolvedModel
from beprepared_dagster.nodes.base import Image, ImageNode, NodeContext, Outcome

DTYPES = ("bfloat16", "float16", "float32")
QUANTIZE = ("4bit", "8bit")
ON_ERROR = ("keep", "reject")


def check_choice(name: str, value: Any, accepted: Sequence[Any], allow_none: bool = True) -> None:
    """Raise ValueError naming the parameter and the accepted values (fails the workflow at load time)."""
    if (value is None and allow_none) or value in accepted:
        return
    shown = ", ".join(repr(a) for a in accepted) + (" or None" if allow_none else "")
    raise ValueError(f"{name}={value!r} is not accepted; use {shown}")


class ModelNode(ImageNode):
    """Base of nodes that run a local model. Subclasses set the class attributes and call `_setup_model`.

    Args:
        model: a hub id (downloaded into the Hugging Face cache when missing) or a local folder.
        revision: a branch, tag or commit of the hub repository (pin a commit to make the cache key follow
            the weights).
        batch_size: images per device batch (not part of the cache key).
        devices: devices to run on, e.g. `["cuda:0", "cuda:1"]` (default: every GPU, else the CPU; not part of
            the cache key).
        dtype: "bfloat16", "float16" or "float32" (default: bfloat16 on a GPU, float32 on the CPU).
        quantize: "4bit" or "8bit" loading through bitsandbytes (the `quant` extra), on CUDA.

    Attributes:
        backend: "package.module:Class" of the `models.api.Backend` that runs the model on one device.
        family: the model family's name for messages.
        default_model: the hub id used when `model=` is not given (the original's model where it had one).
        required_files: glob patterns a local folder of this family must hold.
        trust_remote_code: whether the checkpoint's own Python code runs (logged when True).
        default_batch_size: images per device batch when `batch_size=` is not given.
    """

    backend: ClassVar[str] = ""
    family: ClassVar[str] = "transformers"
    default_model: ClassVar[str] = ""
    required_files: ClassVar[tuple[str, ...]] = ("config.json",)
    allow_patterns: ClassVar[tuple[str, ...] | None] = None
    trust_remote_code: ClassVar[bool] = False
    default_batch_size: ClassVar[int] = 4
    reads: ClassVar[tuple[str, ...] | None] = ("objectid",)
    # Where and in what batches the work runs does not change results; the dtype and quantization do.
    fingerprint_exclude: ClassVar[tuple[str, ...]] = ("batch_size", "devices")

    def _setup_model(
        self,
        model: str | None,
        revision: str | None,
        batch_size: int | None,
        devices: Sequence[str] | None,
        dtype: str | None,
        quantize: str | None,
    ) -> None:
        if model is not None and (not isinstance(model, str) or not model.strip()):
            raise ValueError(f"model must be a hub id or a folder, got {model!r}")
        check_choice("dtype", dtype, DTYPES)
        check_choice("quantize", quantize, QUANTIZE)
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if devices is not None and (isinstance(devices, str) or not all(isinstance(d, str) for d in devices)):
            raise ValueError(
                f"devices must be a list of device names like ['cuda:0', 'cuda:1'], got {devices!r}"
            )
        self.model = str(model or self.default_model)
        self.revision = revision
        self.model_batch_size = batch_size or self.default_batch_size
        self.device_settings = DeviceSettings(tuple(devices) if devices else None, dtype, quantize)

    def model_spec(self) -> ModelSpec:
        return ModelSpec(
            model=self.model,
            revision=self.revision,
            family=self.family,
            required_files=self.required_files,
            allow_patterns=self.allow_patterns,
            trust_remote_code=self.trust_remote_code,
        )

    def extra_specs(self) -> dict[str, ModelSpec]:
        """Further checkpoints the backend needs (e.g. JoyCaption Alpha's SigLIP and Llama bases). They are
        resolved with the main model, before any image is computed, and reach the backend as
        `extra_models={name: folder}` in its arguments."""
        return {}

    def backend_args(self) -> dict[str, Any]:
        """JSON-able arguments for the backend (prompt, generation parameters)."""
        return {}

    def work_data(self, image: Image) -> dict[str, Any]:
        """JSON-able per-image inputs for the backend (e.g. the seed)."""
        return {}

    def outcome(self, image: Image, result: Any, model: ResolvedModel) -> Outcome:
        """Turn one backend result (or an `ItemError`) into the image's outcome."""
        raise NotImplementedError

    def without_model(self, images: list[Image], ctx: NodeContext) -> list[Outcome | None]:
        """Outcomes for images that need no pass of the model (None: compute it), asked before the model is
        resolved; e.g. AestheticScore from CLIP embeddings the workflow already stored."""
        return [None] * len(images)

    def process(self, images: list[Image], ctx: NodeContext) -> list[Outcome]:
        raise TypeError(
            f"{type(self).__name__} runs through the model runtime (orchestration/stage_model.py)"
        )


class CaptionNode(ModelNode):
    """Base of the local captioners. Subclasses set `DEFAULT_PROMPT` and call `_setup_caption`.

    The prompt sent is `prompt` (or `DEFAULT_PROMPT`), then `instructions` after a blank line, as in the
    original. Sampling is seeded per image from `seed` and the image's object id, so a recomputation is
    reproducible.

    Args:
        target_prop: the property that receives the caption.
        prompt: replaces the node's default prompt.
        instructions: text appended to the prompt after a blank line.
        max_new_tokens: the longest caption, in tokens (None: the node's default).
        temperature: sampling temperature; 0 is greedy (None: the node's default).
        top_p: nucleus sampling's probability mass (None: the node's default).
        seed: the sampling seed, combined with each image's object id.
        on_error: an empty or refused caption: "keep" the image without one (recorded as `caption_error`,
            retried next run) or "reject" it.
    """

    writes: ClassVar[tuple[str, ...]] = ("{target_prop}", "caption_model", "caption_error")

    DEFAULT_PROMPT: ClassVar[str] = "Describe the image in detail."
    default_max_new_tokens: ClassVar[int] = 300
    default_temperature: ClassVar[float] = 0.5
    default_top_p: ClassVar[float] = 0.9

    def _setup_caption(
        self,
        target_prop: str,
        prompt: str | None,
        instructions: str | None,
        max_new_tokens: int | None,
        temperature: float | None,
        top_p: float | None,
        seed: int,
        on_error: str,
    ) -> None:
        if not isinstance(target_prop, str) or not target_prop:
            raise ValueError(f"target_prop must be a property name, got {target_prop!r}")
        for name, value in (("prompt", prompt), ("instructions", instructions)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} must be a string, got {value!r}")
        check_choice("on_error", on_error, ON_ERROR, allow_none=False)
        self.target_prop, self.prompt, self.instructions = target_prop, prompt, instructions
        self.max_new_tokens = max_new_tokens if max_new_tokens is not None else self.default_max_new_tokens
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
        self.temperature = self.default_temperature if temperature is None else float(temperature)
        self.top_p = self.default_top_p if top_p is None else float(top_p)
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"temperature must be >= 0 and top_p in (0, 1]; got {temperature!r}, {top_p!r}")
        self.seed, self.on_error = int(seed), on_error

    def full_prompt(self) -> str:
        prompt = self.prompt if self.prompt is not None else self.DEFAULT_PROMPT
        return f"{prompt}\n\n{self.instructions}" if self.instructions else prompt

    def backend_args(self) -> dict[str, Any]:
        return {
            "prompt": self.full_prompt(),
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
        }

    def work_data(self, image: Image) -> dict[str, Any]:
        digest = hashlib.sha256(f"{self.seed}:{image['objectid']}".encode()).digest()
        return {"seed": int.from_bytes(digest[:4], "big")}

    def outcome(self, image: Image, result: Any, model: ResolvedModel) -> Outcome:
        if isinstance(result, ItemError):
            if result.bad_image:
                return Outcome.reject(f"bad image: {result.reason}")
            return self._failed(result.reason)
        text = result.strip() if isinstance(result, str) else ""
        if not text:
            return self._failed("the model returned an empty caption")
        return Outcome.keep(**{self.target_prop: text, "caption_model": model.label, "caption_error": None})

    def _failed(self, reason: str) -> Outcome:
        if self.on_error == "reject":
            outcome = Outcome.reject(f"caption failed: {reason}")
        else:
            outcome = Outcome.keep(caption_error=reason, caption_model=None)
        outcome.cache = False
        return outcome
