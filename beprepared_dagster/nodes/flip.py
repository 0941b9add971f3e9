"""Flip: mirror images, in place or as an extra training image (augmentation)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from beprepared_dagster.export.entries import AUGMENTATIONS  # what the exporters read (mode='add')
from beprepared_dagster.nodes import pixels
from beprepared_dagster.nodes.base import Image, NodeContext, TransformNode

DIRECTIONS = ("horizontal", "vertical")
MODES = ("add", "replace")
_KEEP_FORMATS = ("JPEG", "PNG", "WEBP")


class Flip(TransformNode):
    """Mirror images left-right ("horizontal") or top-bottom ("vertical").

    `mode="add"` keeps the image as it is and adds the mirrored copy as a second training image: every Save
    node writes it as `<stem>_flip<ext>` (`<stem>_vflip<ext>` for vertical) next to the original, with the same caption (its `.json` sidecar
    says `derived_from` and `augmentation`). `mode="replace"` mirrors the image itself (new bytes, same
    identity). Images for which `skip_if(image)` is true are left alone (e.g. images tagged `text`, or
    with asymmetric subjects); they get `flipped=False`.

    With `mode="add"`, put Flip after every node that changes pixels: a later ConvertFormat, crop or
    resize would leave the mirrored copy behind, and the export refuses that (naming the image).

    Args:
        direction: "horizontal" (left-right, the usual augmentation) or "vertical".
        mode: "add" (an extra mirrored image) or "replace" (mirror in place).
        skip_if: a predicate on the image; True leaves that image unflipped.
        quality: JPEG/WEBP quality of the mirrored bytes (formats other than JPEG/PNG/WEBP become PNG).
    """

    version: ClassVar[int] = 1
    reads: ClassVar[tuple[str, ...] | None] = None  # skip_if may read any property
    writes: ClassVar[tuple[str, ...]] = (
        "flipped", AUGMENTATIONS, "objectid", "format", "ext", "width", "height", "orientation", "mode",
    )  # fmt: skip
    description: ClassVar[str] = "Images flipped ({direction}, mode={mode})."

    def __init__(
        self,
        direction: str = "horizontal",
        mode: str = "add",
        skip_if: Callable[[Image], Any] | None = None,
        quality: int = 95,
    ) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(
                f"direction={direction!r} is not accepted; use {' or '.join(map(repr, DIRECTIONS))}"
            )
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is not accepted; use {' or '.join(map(repr, MODES))}")
        if skip_if is not None and not callable(skip_if):
            raise ValueError(
                f"skip_if must be a function of the image returning True to skip, got {skip_if!r}"
            )
        self.direction, self.mode, self.skip_if = direction, mode, skip_if
        self.quality = pixels.check_quality(quality)

    def transform(self, image: Image, ctx: NodeContext) -> dict[str, Any]:
        if self.skip_if is not None and self.skip_if(image):
            return {"flipped": False, AUGMENTATIONS: None}
        mirrored = self._mirrored(image, ctx)
        if self.mode == "replace":
            return {**mirrored, "flipped": self.direction, AUGMENTATIONS: None}
        extra = {
            "suffix": "_flip" if self.direction == "horizontal" else "_vflip",
            "augmentation": f"flip_{self.direction}",
            "source": image["objectid"],  # the bytes it mirrors: the export checks they are still the image's
            **{k: mirrored[k] for k in ("objectid", "ext", "format", "width", "height")},
        }
        earlier = [a for a in image.get(AUGMENTATIONS) or () if a.get("suffix") != extra["suffix"]]
        return {"flipped": False, AUGMENTATIONS: [*earlier, extra]}

    def _mirrored(self, image: Image, ctx: NodeContext) -> dict[str, Any]:
        from PIL import Image as PILImage

        decoded, icc = pixels.open_upright(ctx.objects.read(image["objectid"]))
        turn = (
            PILImage.Transpose.FLIP_LEFT_RIGHT
            if self.direction == "horizontal"
            else PILImage.Transpose.FLIP_TOP_BOTTOM
        )
        target = image.get("format") if image.get("format") in _KEEP_FORMATS else "PNG"
        return pixels.store(ctx, pixels.encode(decoded.transpose(turn), target, self.quality, icc), target)
