"""Gemma 3 on the generic image-text-to-text backend, with one image list per prompt (see `mllama.py`) and
the original's repetition penalty. Unlike the original, images are captioned in real batches and a failure is
never stored as the caption text."""

from __future__ import annotations

from typing import Any

from beprepared_dagster.models.backends.mllama import RowImagesBackend


class Gemma3Backend(RowImagesBackend):
    """Args (beyond VLMBackend's): repetition_penalty (1.0: none)."""

    def extra_generate(self) -> dict[str, Any]:
        penalty = float(self.args.get("repetition_penalty") or 1.0)
        extra = super().extra_generate()
        return {**extra, "repetition_penalty": penalty} if penalty != 1.0 else extra
