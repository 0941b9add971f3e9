"""NudeNet's detector (the `nudenet` package, AGPL-3.0): the 320 px YOLOv8n ONNX model that ships inside its
wheel, with the package's own pre- and post-processing (`_read_image`, `_postprocess`), batched.

`NudeDetector` is not used as such: it builds its onnxruntime session without naming providers (onnxruntime-gpu
refuses that) and decodes files itself on the calling thread. Here images are decoded on the runtime's thread
pool and handed to the package's preprocessing as the BGR arrays `cv2.imread` would give it, so the
detections are the ones `NudeDetector().detect(path)` returns for the same file.
"""

from __future__ import annotations

import logging
from typing import Any

from beprepared_dagster.errors import BeprepareError
from beprepared_dagster.models.api import Backend, WorkItem
from beprepared_dagster.models.backends import onnx_session

log = logging.getLogger(__name__)
MODEL_FILE = "320n.onnx"
RESOLUTION = 320  # the shipped model's input size (NudeDetector's inference_resolution)
INSTALL = "pip install 'beprepared-dagster[nsfw]'"


class NudeNetBackend(Backend):
    """No args. Result per image: nudenet's detections, `[{"class", "score", "box": [x, y, w, h]}, ...]`
    (the package keeps boxes scoring 0.25 or more after non-maximum suppression)."""

    def load(self) -> None:
        try:
            from nudenet import nudenet as package
        except ImportError:
            raise BeprepareError(f"NudeNet needs the nudenet package (AGPL-3.0): {INSTALL}") from None
        self.package = package
        self.session = onnx_session.open_session(self.model.path / MODEL_FILE, self.device, log)
        self.input_name = self.session.get_inputs()[0].name

    def prepare(self, image: Any, item: WorkItem) -> Any:
        import numpy as np

        bgr = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])
        blob, x_ratio, y_ratio, x_pad, y_pad, width, height = self.package._read_image(bgr, RESOLUTION)
        return blob, (x_pad, y_pad, x_ratio, y_ratio, width, height), item

    def run(self, batch: list[Any]) -> list[Any]:
        import numpy as np

        inputs = np.vstack([blob for blob, _, _ in batch])
        output = onnx_session.run(self.session, {self.input_name: inputs})[0]
        return [
            _plain(self.package._postprocess([output[j : j + 1]], *meta, RESOLUTION, RESOLUTION))
            for j, (_, meta, _) in enumerate(batch)
        ]

    def close(self) -> None:
        self.session = None


def _plain(detections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """JSON-able detections (the package returns numpy scalars in places)."""
    return [
        {"class": str(d["class"]), "score": float(d["score"]), "box": [int(v) for v in d["box"]]}
        for d in detections
    ]
