"""Upscale with a super-resolution model (`Upscale(method="SWINIR" | "ESRGAN")`): spandrel loads the weights
file, the image runs tile by tile, then Lanczos takes it to exactly `min_edge` on the shorter side.

`Upscale(...)` builds this node when `method` names a model (see `scaling.Upscale`); it runs through the
model runtime like the captioners, so a fully cached stage never opens the weights file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from beprepared_dagster.models.api import ModelSpec, ResolvedModel
from beprepared_dagster.models.loading import ModelNotFound
from beprepared_dagster.nodes import pixels
from beprepared_dagster.nodes.base import Image, NodeContext, Outcome
from beprepared_dagster.nodes.pixel_model import MODELS_DIR_ENV, PixelModelNode, icc_of, weights_file
from beprepared_dagster.nodes.scaling import fit

# The original's weights for each method: (file name, where to download it).
DEFAULT_WEIGHTS = {
    "SWINIR": (
        "003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN.pth",
        "https://github.com/JingyunLiang/SwinIR/releases/download/v0.0/003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN.pth",
    ),
    "ESRGAN": (
        "RealESRGAN_x2plus.pth",
        "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.1/RealESRGAN_x2plus.pth",
    ),
}
WEIGHT_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors")


class ModelUpscale(PixelModelNode):
    """Enlarge images whose shorter side is below `min_edge` with a super-resolution model, then Lanczos to
    exactly `min_edge`. Built by `Upscale(method="SWINIR" | "ESRGAN", ...)`.

    Args:
        method: "SWINIR" or "ESRGAN": picks the default weights file (the original's).
        min_edge: the shorter side every image should have at least.
        format: the format of upscaled images.
        quality: JPEG/WEBP quality of upscaled images.
        model: a weights file (`.pth`, `.safetensors`…) of any architecture spandrel loads, or a bare file
            name looked up in $BEPREPARED_MODELS_DIR (default ~/.cache/beprepared/models).
        tile: tile size in input pixels (smaller tiles need less device memory).
        tile_overlap: overlap between tiles in input pixels (seams are blended across it).
        batch_size: images per device batch. devices, dtype: as for the captioners.
    """

    backend: ClassVar[str] = "beprepared_dagster.models.backends.upscale:UpscaleBackend"
    family: ClassVar[str] = "super-resolution"
    writes: ClassVar[tuple[str, ...]] = (
        "upscale_info", "objectid", "format", "ext", "width", "height", "orientation", "mode",
    )  # fmt: skip
    default_batch_size: ClassVar[int] = 1
    version: ClassVar[int] = 1
    description: ClassVar[str] = (
        "Images enlarged to a shorter side of at least {min_edge} by a {method} model, as {format}."
    )

    def __init__(
        self,
        method: str,
        min_edge: int = 1024,
        format: str = "PNG",
        quality: int = 95,
        model: str | os.PathLike | None = None,
        tile: int = 512,
        tile_overlap: int = 32,
        batch_size: int | None = None,
        devices: Sequence[str] | None = None,
        dtype: str | None = None,
    ) -> None:
        if method not in DEFAULT_WEIGHTS:
            raise ValueError(f"method {method!r} is not one of {', '.join(DEFAULT_WEIGHTS)}")
        for name, value, low in (
            ("min_edge", min_edge, 1),
            ("tile", tile, 32),
            ("tile_overlap", tile_overlap, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer ≥ {low} (pixels), got {value!r}")
        if tile_overlap * 2 >= tile:
            raise ValueError(f"tile_overlap={tile_overlap} must be less than half of tile={tile}")
        if model is not None and not (isinstance(model, str | os.PathLike) and str(model).strip()):
            raise ValueError(f"model must be a weights file such as 'RealESRGAN_x4plus.pth', got {model!r}")
        self.params["method"] = self.method = method
        self.params["model"] = str(model) if model is not None else None
        self.format = self.params["format"] = pixels.check_format(format)
        self.quality = pixels.check_quality(quality)
        self._setup_model(None, None, batch_size, devices, dtype, None)
        self.weights_arg = str(model) if model is not None else None

    @property
    def default_stage_name(self) -> str:
        return "upscale"

    def weights_path(self) -> Path:
        """The weights file this node loads (a bare name lives in the models folder)."""
        return weights_file(self.weights_arg or DEFAULT_WEIGHTS[self.method][0])

    def model_spec(self) -> ModelSpec:
        """Called only when some image needs upscaling: a missing file fails the stage before any write.

        Raises:
            ModelNotFound: naming the file, and where to download the original's weights.
        """
        path = self.weights_path().resolve()
        if not path.is_file():
            hint = (
                f"download {DEFAULT_WEIGHTS[self.method][1]} into {path.parent}"
                if self.weights_arg is None
                else "check model="
            )
            raise ModelNotFound(
                f"Upscale(method={self.method!r}): weights file {path} does not exist; {hint} "
                f"(or pass model= a weights file; bare names are looked up in ${MODELS_DIR_ENV})"
            )
        if path.suffix.lower() not in WEIGHT_SUFFIXES:
            raise ModelNotFound(f"{path} is not a weights file ({', '.join(WEIGHT_SUFFIXES)})")
        return ModelSpec(model=str(path.parent), family=self.family, required_files=(path.name,))

    def backend_args(self) -> dict[str, Any]:
        tile, overlap = self.params["tile"], self.params["tile_overlap"]
        return {"weights": self.weights_path().name, "tile": tile, "tile_overlap": overlap}

    def work_data(self, image: Image) -> dict[str, Any]:
        width, height, min_edge = image["width"], image["height"], self.params["min_edge"]
        if min(width, height) >= min_edge:
            return {}
        size = fit(width, height, min_edge, shorter=True)
        from PIL import Image as PILImage

        limit = PILImage.MAX_IMAGE_PIXELS  # larger results are rejected in derive (check_pixels)
        return {"size": list(size)} if not limit or size[0] * size[1] <= limit else {}

    def derive(self, image: Image, result: Any, model: ResolvedModel, ctx: NodeContext) -> Outcome:
        if result is None:  # already large enough (bytes untouched), or the result would be too large
            if min(image["width"], image["height"]) < self.params["min_edge"]:
                pixels.check_pixels(*fit(image["width"], image["height"], self.params["min_edge"], True))
            return Outcome.keep()
        icc = icc_of(ctx.objects.read(image["objectid"]))
        props = self.store(ctx, result, self.format, icc)
        props["upscale_info"] = {
            "method": self.method,
            "model": self.weights_path().name,
            "min_edge": self.params["min_edge"],
            "original_width": image["width"],
            "original_height": image["height"],
            "scaled_width": props["width"],
            "scaled_height": props["height"],
        }
        return Outcome.keep(**props)
