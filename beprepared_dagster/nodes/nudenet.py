"""NudeNet: nudity detection with the `nudenet` package (AGPL-3.0, an optional extra)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from beprepared_dagster.models.api import ItemError, ResolvedModel
from beprepared_dagster.nodes.base import Image, Outcome
from beprepared_dagster.nodes.onnx_model import OnnxModelNode

INSTALL = "pip install 'beprepared-dagster[nsfw]'"
# The original's set: any of these at or above the threshold is nudity.
NUDITY_LABELS = frozenset(
    {
        "BUTTOCKS_EXPOSED",
        "FEMALE_BREAST_EXPOSED",
        "FEMALE_GENITALIA_EXPOSED",
        "ANUS_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
    }
)
# The labels that say which sex a detected person is (the original tested the `MALE_` prefix for both).
MALE_LABELS = frozenset({"FACE_MALE", "MALE_BREAST_EXPOSED", "MALE_GENITALIA_EXPOSED"})
FEMALE_LABELS = frozenset(
    {
        "FACE_FEMALE",
        "FEMALE_BREAST_COVERED",
        "FEMALE_BREAST_EXPOSED",
        "FEMALE_GENITALIA_COVERED",
        "FEMALE_GENITALIA_EXPOSED",
    }
)


def package_folder() -> Path | None:
    """The installed `nudenet` package's folder (which holds its model), found without importing it."""
    try:
        spec = importlib.util.find_spec("nudenet")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


class NudeNet(OnnxModelNode):
    """Detect exposed and covered body parts and faces with NudeNet's detector (the 320 px model that ships
    inside the `nudenet` wheel, run by onnxruntime).

    NudeNet is AGPL-3.0, so it is an optional extra: `pip install 'beprepared-dagster[nsfw]'`. Without it
    the node fails when the workflow loads, with that command.

    Writes `nudenet` (the detections: `[{"class", "score", "box": [x, y, w, h]}]`, boxes in pixels of the
    upright image), `has_nudity` (an exposed breast, buttocks, anus or genitals at or above `threshold`),
    `has_female` / `has_male` (a face or body part of that sex at or above `threshold`). Drop NSFW images
    with `NudeNet() >> Filter(lambda image: not image.has_nudity)`.

    Args:
        threshold: minimum detection score counted by `has_nudity`, `has_female` and `has_male` (nudenet
            itself reports no detection under 0.25). Part of the cache key: changing it detects again.
        batch_size: images per onnxruntime call.
        devices: e.g. `["cuda:0"]`; default every visible GPU, else the CPU. The GPU needs `onnxruntime-gpu`.
    """

    backend: ClassVar[str] = "beprepared_dagster.models.backends.onnx_nudenet:NudeNetBackend"
    family: ClassVar[str] = "NudeNet"
    required_files: ClassVar[tuple[str, ...]] = ("320n.onnx",)
    description: ClassVar[str] = "Images checked for nudity by NudeNet (threshold {threshold})."
    writes: ClassVar[tuple[str, ...]] = ("nudenet", "has_nudity", "has_female", "has_male")
    extra: ClassVar[str] = "nsfw"
    gpu: ClassVar[str] = "no: a small detector, fast on the CPU; CUDA with onnxruntime-gpu"

    def __init__(
        self,
        threshold: float = 0.5,
        batch_size: int | None = None,
        devices: Sequence[str] | None = None,
    ) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold <= 1:
            raise ValueError(f"threshold must be a number in (0, 1], got {threshold!r}")
        folder = package_folder()
        if folder is None:
            raise ValueError(f"needs the nudenet package (AGPL-3.0), which is not installed: {INSTALL}")
        self.threshold = float(threshold)
        # The detector's version is part of the cache key: a new nudenet release detects again.
        self.params["nudenet"] = importlib.metadata.version("nudenet")
        self._setup_model(str(folder), None, batch_size, devices, "float32", None)

    def outcome(self, image: Image, result: Any, model: ResolvedModel) -> Outcome:
        if isinstance(result, ItemError):
            return Outcome.reject(f"bad image: {result.reason}" if result.bad_image else result.reason)
        detections = [
            {"class": d["class"], "score": round(float(d["score"]), 4), "box": list(d["box"])} for d in result
        ]
        found = {str(d["class"]) for d in result if float(d["score"]) >= self.threshold}
        return Outcome.keep(
            nudenet=detections,
            has_nudity=bool(found & NUDITY_LABELS),
            has_female=bool(found & FEMALE_LABELS),
            has_male=bool(found & MALE_LABELS),
        )
