"""The contract between model nodes and the runtime.

A model node (see `nodes/model.py`) describes *what* to run: a `ModelSpec` (which checkpoint), a `Backend`
class named by import path (how to run it on one device), JSON-able backend arguments (prompt, generation
parameters) and one `WorkItem` per image that needs computing. The runtime does the rest: resolve the model
(only when some image needs it), pick devices, load once per device, batch, back off on out-of-memory, and hand
results back batch by batch so the executor can store them as they arrive.

Backends are named as "package.module:Class" strings and their arguments are plain JSON values, so a worker
process can build one from its own imports; nothing is pickled to disk.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """Which checkpoint a node needs.

    Attributes:
        model: a hub id ("fancyfeast/llama-joycaption-beta-one-hf-llava") or a local folder.
        revision: a branch, tag or commit of a hub id (None: the default branch); ignored for folders.
        family: the family's name for messages ("LLaVA", "Florence-2").
        required_files: files (glob patterns) a folder of this family must hold; a folder missing one fails with
            the list of what is missing.
        allow_patterns: the files to fetch when downloading (None: the whole repository).
        trust_remote_code: whether the checkpoint's own modeling code may run (logged when True).
        repo_type: "model" or "space" (the JoyCaption Alpha checkpoints live in Hugging Face spaces).
        subfolder: the folder inside the repository that holds the checkpoint (None: its root); the backend
            reads `ResolvedModel.path / subfolder`, and `required_files` / `allow_patterns` carry the prefix.
    """

    model: str
    revision: str | None = None
    family: str = "transformers"
    required_files: tuple[str, ...] = ("config.json",)
    allow_patterns: tuple[str, ...] | None = None
    trust_remote_code: bool = False
    repo_type: str = "model"
    subfolder: str | None = None


@dataclass(frozen=True)
class ResolvedModel:
    """A model found on disk: its folder and, for hub ids, the commit it resolved to."""

    spec: ModelSpec
    path: Path
    commit: str | None = None

    @property
    def label(self) -> str:
        """`<id>@<commit>` (or the folder path): recorded beside every result as `caption_model` etc. A
        checkpoint in a subfolder reads `<id>/<subfolder>@<commit>`."""
        name = f"{self.spec.model}/{self.spec.subfolder}" if self.spec.subfolder else self.spec.model
        return f"{name}@{self.commit}" if self.commit else name


@dataclass(frozen=True)
class DeviceSettings:
    """Where and how to load.

    Attributes:
        devices: e.g. ("cuda:0", "cuda:1"); None means every visible GPU, else the CPU.
        dtype: "bfloat16", "float16" or "float32"; None means bfloat16 on GPU, float32 on CPU.
        quantize: None, "4bit" or "8bit" (bitsandbytes, GPU only).
    """

    devices: tuple[str, ...] | None = None
    dtype: str | None = None
    quantize: str | None = None


@dataclass
class WorkItem:
    """One image to compute: `index` is the caller's handle, `path` the file to decode, `data` JSON-able
    per-image inputs (e.g. a seed)."""

    index: int
    path: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class ItemError:
    """The result for one item that failed on its own (undecodable image, empty or refused output). The
    runtime never caches these; the node turns them into an outcome."""

    reason: str
    bad_image: bool = False


class Backend:
    """One model loaded on one device. Built inside the process that uses it.

    Subclasses implement `load` and `run`; `prepare` runs on a thread pool (decode, resize, tokenize) while the
    device works on the previous batch.
    """

    def __init__(
        self, model: ResolvedModel, device: str, dtype: str, quantize: str | None, **args: Any
    ) -> None:
        self.model, self.device, self.dtype, self.quantize, self.args = model, device, dtype, quantize, args

    def load(self) -> None:
        """Load weights onto `self.device`. Raise `beprepared_dagster.errors.BeprepareError` with a clear message
        for a folder that is not a model of this family."""
        raise NotImplementedError

    def prepare(self, image: Any, item: WorkItem) -> Any:
        """CPU-side preparation of one decoded PIL image (RGB). Default: the image and the item."""
        return image, item

    def run(self, batch: list[Any]) -> list[Any]:
        """Results for a batch of prepared inputs, aligned with `batch`; an `ItemError` for an item that failed
        on its own. Out-of-memory errors propagate (the runtime halves the batch and retries)."""
        raise NotImplementedError

    def close(self) -> None:
        """Free device memory (the runtime also collects garbage and empties the CUDA cache)."""


def backend_class(path: str) -> type[Backend]:
    """Import a backend class from "package.module:Class"."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)
