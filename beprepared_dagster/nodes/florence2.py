"""Florence2Caption: Microsoft's Florence-2 through transformers' native Florence-2 classes."""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any, ClassVar

from beprepared_dagster.nodes.model import CaptionNode


class Florence2Task(Enum):
    """Florence-2's captioning tasks (the original's names and values)."""

    CAPTION = "CAPTION"
    DETAILED_CAPTION = "DETAILED_CAPTION"
    MORE_DETAILED_CAPTION = "MORE_DETAILED_CAPTION"


def florence2_task(task: Any) -> Florence2Task:
    """A `Florence2Task` from the enum, its name or its token ("caption", "<CAPTION>").

    Raises:
        ValueError: naming `task` and the accepted values.
    """
    if isinstance(task, Florence2Task):
        return task
    name = task.strip().strip("<>").upper() if isinstance(task, str) else None
    if name in Florence2Task.__members__:
        return Florence2Task[name]
    accepted = ", ".join(f"Florence2Task.{t.name}" for t in Florence2Task)
    raise ValueError(f"task={task!r} is not accepted; use {accepted} (or its name as a string)")


class Florence2Caption(CaptionNode):
    """Caption each image with Florence-2 (0.77B in the large size; runs on a CPU too, slowly).

    The default checkpoint is `florence-community/Florence-2-large-ft`, the native-format conversion of the
    original's `microsoft/Florence-2-large-ft`. The `microsoft/Florence-2-*` repositories hold remote code
    for an older transformers and are not loaded; pass a `florence-community/Florence-2-*` id (base, large,
    base-ft, large-ft) or a folder in that format as `model=`.

    Florence-2 takes no free prompt: `task` picks the caption length. Decoding is the original's beam search
    (3 beams, up to 1024 new tokens); `temperature` > 0 samples instead, seeded per image.

    Args:
        target_prop: the property that receives the caption.
        task: a `Florence2Task` or its name (`"CAPTION"`, `"DETAILED_CAPTION"`, `"MORE_DETAILED_CAPTION"`).
        batch_size: images per device batch (the original used its 64 only to size work units).
    """

    backend: ClassVar[str] = "beprepared_dagster.models.backends.florence2:Florence2Backend"
    family: ClassVar[str] = "Florence-2"
    default_model: ClassVar[str] = "florence-community/Florence-2-large-ft"
    required_files: ClassVar[tuple[str, ...]] = ("config.json", "*.safetensors*", "tokenizer*")
    default_batch_size: ClassVar[int] = 32
    default_max_new_tokens: ClassVar[int] = 1024
    default_temperature: ClassVar[float] = 0.0
    default_top_p: ClassVar[float] = 1.0
    description: ClassVar[str] = "Images captioned by Florence-2 ({task})."

    def __init__(
        self,
        target_prop: str = "caption",
        task: Florence2Task | str = Florence2Task.MORE_DETAILED_CAPTION,
        batch_size: int | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        seed: int = 0,
        on_error: str = "keep",
        model: str | None = None,
        revision: str | None = None,
        devices: Sequence[str] | None = None,
        dtype: str | None = None,
        quantize: str | None = None,
    ) -> None:
        self.task = florence2_task(task)
        self.params["task"] = self.task.value  # the enum and its name are one cache key
        self._setup_model(model, revision, batch_size, devices, dtype, quantize)
        self._setup_caption(target_prop, None, None, max_new_tokens, temperature, top_p, seed, on_error)

    def full_prompt(self) -> str:
        return f"<{self.task.value}>"

    def backend_args(self) -> dict[str, Any]:
        args = super().backend_args()
        args["task"] = args.pop("prompt")
        return {**args, "max_edge": 1024}  # the processor squashes images to 768²: shrink on decode threads
