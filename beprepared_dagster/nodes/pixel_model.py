"""Model nodes that change pixels (Anonymize, EdgeWatermarkRemoval, model Upscale): the backend computes
something per image (face boxes, watermark boxes, upscaled pixels) and `derive` turns it into new bytes under
a new object id, stored through `ctx.objects`. The partition (image identity) never changes.

The model stage calls `finish(image, result, model, ctx)` for these nodes instead of `outcome`; a failure in
`derive` costs only its image (a bad image is rejected and cached, anything else is retried next run).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from beprepared_dagster.errors import BadImage
from beprepared_dagster.models.api import ItemError, ResolvedModel
from beprepared_dagster.nodes import imaging, pixels
from beprepared_dagster.nodes.base import Image, NodeContext, Outcome
from beprepared_dagster.nodes.model import ModelNode

MODELS_DIR_ENV = "BEPREPARED_MODELS_DIR"
# Formats derived pixels are written back in; anything else (GIF's 256 colours, BMP, TIFF) becomes PNG.
KEEP_FORMATS = ("JPEG", "PNG", "WEBP")


def output_format(image: Image) -> str:
    """The image's own format when it is one trainers read well, else PNG."""
    return image.get("format") if image.get("format") in KEEP_FORMATS else "PNG"


def icc_of(data: bytes) -> bytes | None:
    """The ICC profile of encoded bytes (reads the header only)."""
    return imaging.open_image(data).info.get("icc_profile")


def weights_file(name: str) -> Path:
    """A weights file: a path as given, or a bare file name inside $BEPREPARED_MODELS_DIR (default
    ~/.cache/beprepared/models), where files that are not on the Hugging Face hub are kept."""
    path = Path(name).expanduser()
    if len(path.parts) > 1 or path.is_absolute():
        return path
    return Path(os.environ.get(MODELS_DIR_ENV) or "~/.cache/beprepared/models").expanduser() / path


class PixelModelNode(ModelNode):
    """Base of model nodes that derive new bytes. Subclasses implement `derive`."""

    reads: ClassVar[tuple[str, ...] | None] = ("objectid", "format", "orientation", "mode", "width", "height")
    quality: int = 95

    def derive(self, image: Image, result: Any, model: ResolvedModel, ctx: NodeContext) -> Outcome:
        """The outcome for one backend result (never an `ItemError`); store new bytes with `self.store`."""
        raise NotImplementedError

    def outcome(self, image: Image, result: Any, model: ResolvedModel) -> Outcome:
        raise TypeError(f"{type(self).__name__} derives new bytes: the stage calls finish() with a context")

    def finish(self, image: Image, result: Any, model: ResolvedModel, ctx: NodeContext) -> Outcome:
        if isinstance(result, ItemError):
            if result.bad_image:
                return Outcome.reject(f"bad image: {result.reason}")
            return _retry(result.reason)
        try:
            return self.derive(image, result, model, ctx)
        except BadImage as exc:
            return Outcome.reject(f"bad image: {exc}")
        except Exception as exc:  # one image's failure must not fail the stage
            ctx.log.error(f"{image.get('original_path', image.get('objectid'))}: {type(exc).__name__}: {exc}")
            return _retry(f"{type(exc).__name__}: {exc}")

    def store(self, ctx: NodeContext, picture: Any, target: str, icc: bytes | None) -> dict[str, Any]:
        """Encode a decoded picture as `target` and store it; the properties describing the new bytes."""
        return pixels.store(ctx, pixels.encode(picture, target, self.quality, icc), target)


def _retry(reason: str) -> Outcome:
    outcome = Outcome.reject(f"failed: {reason}")
    outcome.cache = False
    return outcome
