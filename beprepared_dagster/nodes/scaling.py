"""Downscale and Upscale: resize with Pillow's Lanczos filter; the result is new bytes under a new object id,
with width, height, format and extension updated.

Unlike the original, Upscale really stores the resized image (the original saved the unscaled pixels under
the new dimensions) and both nodes set `ext`, so Save names files by the format they contain.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, ClassVar

from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.nodes import pixels
from beprepared_dagster.nodes.base import Image, NodeContext, TransformNode


class DownscaleMethod:
    """Downscale methods (the original's constants)."""

    PIL = "PIL"


class UpscaleMethod:
    """Upscale methods (the original's constants). Only PIL is available without a model."""

    PIL = "PIL"
    SWINIR = "SWINIR"
    ESRGAN = "ESRGAN"


_MODEL_METHODS = (UpscaleMethod.SWINIR, UpscaleMethod.ESRGAN)


def _canonical_method(value: Any, allowed: tuple[str, ...]) -> str:
    name = str(getattr(value, "value", value)).upper()
    if not isinstance(getattr(value, "value", value), str) or name not in allowed:
        raise ValueError(f"method {value!r} is not one of {', '.join(allowed)}")
    return name


def _check_edge(name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a positive integer (pixels), got {value!r}")


def fit(width: int, height: int, edge: int, shorter: bool) -> tuple[int, int]:
    """The size that makes the shorter (or longer) side exactly `edge`, keeping the aspect ratio."""
    side = min(width, height) if shorter else max(width, height)
    scale = edge / side
    new = [max(1, round(width * scale)), max(1, round(height * scale))]
    # Rounding must not miss the requested edge by one pixel on the side it constrains.
    new[0 if (width <= height) == shorter else 1] = edge
    return new[0], new[1]


def _resized(
    image: Image, ctx: NodeContext, size: tuple[int, int], target: str, quality: int, shrinking: bool
) -> dict[str, Any]:
    from PIL import Image as PILImage

    pixels.check_pixels(*size)
    # Decoding a JPEG at a DCT scale still at least twice the target loses nothing visible after Lanczos.
    draft = (size[0] * 2, size[1] * 2) if shrinking else None
    decoded, icc = pixels.open_upright(ctx.objects.read(image.objectid), draft_size=draft)
    resized = decoded.resize(size, PILImage.Resampling.LANCZOS)
    return pixels.store(ctx, pixels.encode(resized, target, quality, icc), target)


class Downscale(TransformNode):
    """Shrink images so the longer side is at most `max_edge`, or the shorter side is `min_edge`.

    Images already within the bound are passed through untouched (bytes and format kept). Resized images
    are encoded as `format`; alpha is kept where the format has it and composited on white otherwise.

    Args:
        method: "PIL" (Lanczos).
        max_edge: shrink images whose longer side is larger, to exactly this.
        min_edge: shrink images whose shorter side is larger, to exactly this. Give max_edge or min_edge.
        format: the format of resized images ("PNG", "JPEG", "WEBP"…).
        quality: JPEG/WEBP quality of resized images.
    """

    version: ClassVar[int] = 1
    reads: ClassVar[tuple[str, ...]] = ("objectid", "width", "height", "orientation")
    description: ClassVar[str] = (
        "Images shrunk (max_edge={max_edge}, min_edge={min_edge}), encoded as {format}."
    )
    writes: ClassVar[tuple[str, ...]] = (
        "objectid",
        "format",
        "ext",
        "width",
        "height",
        "orientation",
        "mode",
        "downscale_info",
    )

    def __init__(
        self,
        method: str = DownscaleMethod.PIL,
        max_edge: int | None = None,
        min_edge: int | None = None,
        format: str = "PNG",
        quality: int = 95,
    ) -> None:
        self.params["method"] = _canonical_method(method, (DownscaleMethod.PIL,))
        _check_edge("max_edge", max_edge)
        _check_edge("min_edge", min_edge)
        if (max_edge is None) == (min_edge is None):
            raise ValueError(
                f"give exactly one of max_edge or min_edge (got max_edge={max_edge}, min_edge={min_edge})"
            )
        self.format = self.params["format"] = pixels.check_format(format)
        self.quality = pixels.check_quality(quality)

    def transform(self, image: Image, ctx: NodeContext) -> dict[str, Any]:
        width, height = image.width, image.height
        max_edge, min_edge = self.params["max_edge"], self.params["min_edge"]
        if max_edge is not None:
            if max(width, height) <= max_edge:
                return {}
            size, bound = fit(width, height, max_edge, shorter=False), {"max_edge": max_edge}
        else:
            if min(width, height) <= min_edge:
                return {}
            size, bound = fit(width, height, min_edge, shorter=True), {"min_edge": min_edge}
        props = _resized(image, ctx, size, self.format, self.quality, shrinking=True)
        props["downscale_info"] = _info(self.params["method"], bound, (width, height), size)
        return props


# Parameters only the model methods take (`nodes/upscale_model.py`).
_MODEL_ONLY = ("model", "tile", "tile_overlap", "batch_size", "devices", "dtype")


class _UpscaleMeta(type(TransformNode)):  # type: ignore[misc]
    """`Upscale(method="SWINIR" | "ESRGAN", ...)` builds the model node (`ModelUpscale`), which runs through
    the model runtime; `Upscale(...)` with "PIL" stays a plain transform (its cache keys are unchanged)."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        method = kwargs.get("method", args[0] if args else UpscaleMethod.PIL)
        name = str(getattr(method, "value", method)).upper() if isinstance(method, str | Enum) else None
        if cls is Upscale and name in _MODEL_METHODS:
            from beprepared_dagster.nodes.upscale_model import ModelUpscale

            try:
                return ModelUpscale(name, *args[1:], **{k: v for k, v in kwargs.items() if k != "method"})
            except WorkflowError as exc:  # the user wrote Upscale(...): say so
                raise WorkflowError(str(exc).replace("ModelUpscale", "Upscale", 1)) from None
        given = [k for k in _MODEL_ONLY if k in kwargs]
        if cls is Upscale and given:
            raise WorkflowError(
                f"Upscale: {', '.join(given)} only apply to method='SWINIR' or 'ESRGAN' (method={method!r})"
            )
        return super().__call__(*args, **kwargs)


class Upscale(TransformNode, metaclass=_UpscaleMeta):
    """Enlarge images whose shorter side is below `min_edge` so it is exactly `min_edge`.

    Images already large enough are passed through untouched. `method="SWINIR"` or `"ESRGAN"` upscales
    with a super-resolution model first (the node becomes `ModelUpscale`, see `nodes/upscale_model.py`:
    `model=` weights file, `tile=`, `tile_overlap=`, `batch_size=`, `devices=`, `dtype=`).

    Args:
        method: "PIL" (Lanczos), "SWINIR" or "ESRGAN".
        min_edge: the shorter side, in pixels, every image should have at least.
        format: the format of resized images ("PNG", "JPEG", "WEBP"…).
        quality: JPEG/WEBP quality of resized images.
    """

    version: ClassVar[int] = 1
    reads: ClassVar[tuple[str, ...]] = ("objectid", "width", "height", "orientation")
    description: ClassVar[str] = (
        "Images enlarged to a shorter side of at least {min_edge} ({method}), as {format}."
    )
    writes: ClassVar[tuple[str, ...]] = (
        "objectid",
        "format",
        "ext",
        "width",
        "height",
        "orientation",
        "mode",
        "upscale_info",
    )

    def __init__(
        self, method: str = UpscaleMethod.PIL, min_edge: int = 1024, format: str = "PNG", quality: int = 95
    ) -> None:
        self.params["method"] = _canonical_method(method, (UpscaleMethod.PIL, *_MODEL_METHODS))
        _check_edge("min_edge", min_edge)
        if min_edge is None:
            raise ValueError("min_edge is required")
        self.format = self.params["format"] = pixels.check_format(format)
        self.quality = pixels.check_quality(quality)

    def transform(self, image: Image, ctx: NodeContext) -> dict[str, Any]:
        width, height = image.width, image.height
        min_edge = self.params["min_edge"]
        if min(width, height) >= min_edge:
            return {}
        size = fit(width, height, min_edge, shorter=True)
        props = _resized(image, ctx, size, self.format, self.quality, shrinking=False)
        props["upscale_info"] = _info(self.params["method"], {"min_edge": min_edge}, (width, height), size)
        return props


def _info(method: str, bound: dict[str, int], original: tuple[int, int], scaled: tuple[int, int]) -> dict:
    return {
        "method": method,
        **bound,
        "original_width": original[0],
        "original_height": original[1],
        "scaled_width": scaled[0],
        "scaled_height": scaled[1],
    }
