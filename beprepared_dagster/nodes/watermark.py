"""EdgeWatermarkRemoval: find watermarks, logos and text near the edges with Florence-2 phrase grounding, and
crop the one edge that removes them with the smallest cut.

The crop rule (the original's, written down, with one guard added):

1. A box is a candidate when it comes within 5 % of an edge (x1 ≤ 5 % of the width, x2 ≥ 95 %, or the same
   for y) and lies entirely inside the band of `max_crop_percent` along some edge.
2. Each candidate asks for a cut on every edge whose band holds its near side: left x2 (when
   x1 ≤ band), right width − x1 (when x2 ≥ width − band), top y2, bottom height − y1.
3. An edge's cut is the largest its candidates ask for. The guard: an edge whose cut would exceed the band
   (`max_crop_percent` of that side) is not cut, and the reason is recorded (the original cut it anyway).
4. Of the edges left, the one with the smallest cut is cut (ties: left, right, top, bottom). Candidates on
   other edges stay, as in the original: one crop per image, never a chain of crops.

Band and margin are whole pixels (`int(width * percent)`), box corners are truncated to pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from beprepared_dagster.models.api import ResolvedModel
from beprepared_dagster.nodes import pixels
from beprepared_dagster.nodes.base import Image, NodeContext, Outcome
from beprepared_dagster.nodes.pixel_model import PixelModelNode, output_format

EDGES = ("left", "right", "top", "bottom")
NEAR = 0.05


@dataclass
class CropDecision:
    """What the rule decided for one image: the crop box (None: no crop), the edge cut, every edge's
    needed cut, the candidate boxes, and why nothing was cut when there were candidates."""

    box: tuple[int, int, int, int] | None
    edge: str | None
    cuts: dict[str, int] = field(default_factory=dict)
    candidates: list[list[int]] = field(default_factory=list)
    reason: str | None = None


def edge_crop(boxes: list[list[float]], width: int, height: int, max_crop_percent: float) -> CropDecision:
    """The crop that removes watermark boxes at one edge (see the module docstring for the rule)."""
    band_x, band_y = int(width * max_crop_percent), int(height * max_crop_percent)
    near_x, near_y = int(width * NEAR), int(height * NEAR)
    candidates = []
    for box in boxes:
        x1, y1, x2, y2 = (int(v) for v in box[:4])
        near = x1 <= near_x or x2 >= width - near_x or y1 <= near_y or y2 >= height - near_y
        inside = x2 <= band_x or x1 >= width - band_x or y2 <= band_y or y1 >= height - band_y
        if near and inside:
            candidates.append([x1, y1, x2, y2])
    cuts: dict[str, int] = {}
    for x1, y1, x2, y2 in candidates:
        for edge, applies, cut in (
            ("left", x1 <= band_x, x2),
            ("right", x2 >= width - band_x, width - x1),
            ("top", y1 <= band_y, y2),
            ("bottom", y2 >= height - band_y, height - y1),
        ):
            if applies:
                cuts[edge] = max(cuts.get(edge, 0), cut)
    if not candidates:
        return CropDecision(None, None)
    limits = {"left": band_x, "right": band_x, "top": band_y, "bottom": band_y}
    allowed = [e for e in EDGES if e in cuts and cuts[e] <= limits[e] and cuts[e] > 0]
    if not allowed:
        edge = min(cuts, key=lambda e: cuts[e] / max(1, limits[e]))
        reason = (
            f"the {edge} edge needs a cut of {cuts[edge]} px, over max_crop_percent={max_crop_percent} "
            f"({limits[edge]} px)"
        )
        return CropDecision(None, None, cuts, candidates, reason)
    edge = min(allowed, key=lambda e: cuts[e])
    left, top, right, bottom = 0, 0, width, height
    if edge == "left":
        left = cuts[edge]
    elif edge == "right":
        right = width - cuts[edge]
    elif edge == "top":
        top = cuts[edge]
    else:
        bottom = height - cuts[edge]
    return CropDecision((left, top, right, bottom), edge, cuts, candidates)


def draw_preview(image: Any, boxes: list[list[int]], crop: tuple[int, int, int, int] | None) -> Any:
    """The original's preview: every detected box in red, the crop in green."""
    from PIL import ImageDraw

    preview = image.convert("RGB")
    draw = ImageDraw.Draw(preview)
    for x1, y1, x2, y2 in boxes:
        draw.rectangle([x1, y1, x2, y2], outline="red", width=3)
    if crop is not None:
        x1, y1, x2, y2 = crop
        draw.rectangle([x1, y1, x2 - 1, y2 - 1], outline="green", width=5)
    return preview


PROMPT = "watermark or logo or text at the edge of the image"
PREVIEW_MODES = (False, True, "replace")


class EdgeWatermarkRemoval(PixelModelNode):
    """Crop away watermarks, logos and text at the edge of each image (Florence-2 finds them; the crop rule
    is in this module's docstring). Every image gets `watermark_info`: `did_modify`, the boxes found, the
    cut per edge, the crop, and `reason` when a crop was needed but would exceed `max_crop_percent`.

    `preview_crop=True` computes the same crop but does not apply it: the image keeps its pixels, and a
    preview (boxes in red, the crop in green) is stored as the object `watermark_preview`.
    `preview_crop="replace"` makes the preview the image itself (the original's preview, to look at through
    Save). `preview_crop` is part of the cache key, so switching it never returns stale previews.

    Args:
        max_crop_percent: the most that may be cut from one side, as a fraction of that side (0–0.5).
        preview_crop: False (crop), True (keep pixels, store a preview) or "replace" (the preview as image).
        model: a Florence-2 checkpoint in the native format (default `florence-community/Florence-2-large-ft`,
            the native conversion of the original's `microsoft/Florence-2-large-ft`), or a folder.
        revision, batch_size, devices, dtype, quantize: model options, as for the captioners.
        max_new_tokens: the longest grounding answer, in tokens (the original's 1024).
        quality: JPEG/WEBP quality of cropped images (they keep their format; GIF, BMP, TIFF become PNG).
    """

    backend: ClassVar[str] = "beprepared_dagster.models.backends.grounding:Florence2GroundingBackend"
    family: ClassVar[str] = "Florence-2"
    writes: ClassVar[tuple[str, ...]] = (
        "watermark_info", "watermark_preview", "objectid", "format", "ext", "width", "height", "orientation",
        "mode",
    )  # fmt: skip
    default_model: ClassVar[str] = "florence-community/Florence-2-large-ft"
    required_files: ClassVar[tuple[str, ...]] = ("config.json", "*.safetensors*", "tokenizer*")
    default_batch_size: ClassVar[int] = 16
    version: ClassVar[int] = 1
    description: ClassVar[str] = "Watermarks at the edges cropped away (max {max_crop_percent} per side)."

    def __init__(
        self,
        max_crop_percent: float = 0.15,
        preview_crop: bool | str = False,
        model: str | None = None,
        revision: str | None = None,
        max_new_tokens: int = 1024,
        batch_size: int | None = None,
        devices: Sequence[str] | None = None,
        dtype: str | None = None,
        quantize: str | None = None,
        quality: int = 95,
    ) -> None:
        if isinstance(max_crop_percent, bool) or not isinstance(max_crop_percent, int | float):
            raise ValueError(f"max_crop_percent must be a fraction such as 0.15, got {max_crop_percent!r}")
        if not 0 < max_crop_percent < 0.5:
            raise ValueError(
                f"max_crop_percent must be between 0 and 0.5 (a fraction), got {max_crop_percent!r}"
            )
        if not any(preview_crop is m or preview_crop == m and isinstance(m, str) for m in PREVIEW_MODES):
            raise ValueError(f"preview_crop must be False, True or 'replace', got {preview_crop!r}")
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
        self.max_crop_percent, self.preview_crop = float(max_crop_percent), preview_crop
        self.max_new_tokens = max_new_tokens
        self.quality = pixels.check_quality(quality)
        self._setup_model(model, revision, batch_size, devices, dtype, quantize)

    def backend_args(self) -> dict[str, Any]:
        # The original's beam search (3 beams, greedy); images shrunk on decode threads (the model sees 768²).
        return {
            "task": f"<CAPTION_TO_PHRASE_GROUNDING>{PROMPT}",
            "max_new_tokens": self.max_new_tokens,
            "temperature": 0.0,
            "top_p": 1.0,
            "max_edge": 1024,
        }

    def derive(self, image: Image, result: Any, model: ResolvedModel, ctx: NodeContext) -> Outcome:
        width, height = image["width"], image["height"]
        found = [[b[0] * width, b[1] * height, b[2] * width, b[3] * height] for b in result["boxes"]]
        decision = edge_crop(found, width, height, self.max_crop_percent)
        info: dict[str, Any] = {
            "did_modify": False,
            "preview_mode": bool(self.preview_crop),
            "boxes": [[round(v) for v in box] for box in found],
            "labels": result["labels"],
            "cuts": decision.cuts,
            "crop": list(decision.box) if decision.box else None,
            "edge": decision.edge,
            "reason": decision.reason,
            "original_width": width,
            "original_height": height,
            "model": model.label,
        }
        if decision.box is None and not (self.preview_crop and found):
            return Outcome.keep(watermark_info=info)
        data = ctx.objects.read(image["objectid"])
        decoded, icc = pixels.open_upright(data)
        if self.preview_crop:
            preview = self.store(ctx, draw_preview(decoded, info["boxes"], decision.box), "PNG", icc)
            if self.preview_crop == "replace":
                return Outcome.keep(**preview, watermark_info={**info, "did_modify": True})
            return Outcome.keep(watermark_info=info, watermark_preview=preview["objectid"])
        props = self.store(ctx, decoded.crop(decision.box), output_format(image), icc)
        info.update(did_modify=True, scaled_width=props["width"], scaled_height=props["height"])
        return Outcome.keep(**props, watermark_info=info)
