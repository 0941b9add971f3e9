"""The SmilingWolf WD taggers (`model.onnx` + `selected_tags.csv`) through onnxruntime.

Preprocessing is the one the models were trained with, as SmilingWolf's own tagger space does it: transparency
composited onto white, the image padded to a centred square with white, resized (bicubic) to the model's
input size read from the ONNX input shape, then float32 **BGR** values 0–255 (no scaling, no mean/std) in an
NHWC batch. The first output is used directly as per-tag probabilities, as kohya's script and the space do.

`selected_tags.csv` (`tag_id,name,category,count`) lists the outputs in order; category 9 is a rating, 0 a
general tag, 4 a character. Other categories are ignored.
"""

from __future__ import annotations

import contextlib
import csv
import logging
from pathlib import Path
from typing import Any

from beprepared_dagster.errors import BeprepareError
from beprepared_dagster.models.api import Backend, WorkItem
from beprepared_dagster.models.backends import onnx_session

log = logging.getLogger(__name__)
MODEL_FILE, TAGS_FILE = "model.onnx", "selected_tags.csv"
RATING, GENERAL, CHARACTER = "9", "0", "4"
DEFAULT_SIZE = 448  # when the ONNX input's height is symbolic (kohya's constant "from wd14 tagger")


def read_tags(path: Path) -> tuple[list[str], list[str]]:
    """Tag names and their categories, in output order.

    Raises:
        BeprepareError: naming the file when it is missing or not a WD tag list.
    """
    if not path.is_file():
        raise BeprepareError(f"{path.parent} is not a WD tagger folder: missing {path.name}")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header = [cell.strip() for cell in rows[0]] if rows else []
    if header[:3] != ["tag_id", "name", "category"] or len(rows) < 2:
        raise BeprepareError(
            f"{path} is not a WD tag list: expected a header 'tag_id,name,category,count' and one row per "
            f"model output, got {','.join(header) or 'an empty file'}"
        )
    body = [row for row in rows[1:] if row]
    return [row[1] for row in body], [row[2].strip() for row in body]


def to_input(image: Any, size: int) -> Any:
    """One RGB PIL image → the model's input: (size, size, 3) float32 BGR 0–255, padded square on white."""
    import numpy as np
    from PIL import Image

    width, height = image.size
    side = max(width, height)
    if (width, height) != (side, side):
        canvas = Image.new("RGB", (side, side), (255, 255, 255))
        canvas.paste(image, ((side - width) // 2, (side - height) // 2))
        image = canvas
    if side != size:
        image = image.resize((size, size), Image.Resampling.BICUBIC)
    return np.ascontiguousarray(np.asarray(image, dtype=np.float32)[:, :, ::-1])


def flatten_on_white(path: str) -> Any | None:
    """The file's pixels with transparency composited onto white, or None when it has no transparency.

    The runtime hands backends RGB images (alpha dropped, so a transparent cut-out shows whatever colour lay
    under it); the taggers were trained on white, so files with alpha are decoded again here."""
    from PIL import Image, ImageOps

    from beprepared_dagster.nodes import imaging

    with Image.open(path) as probe:
        if probe.mode not in ("RGBA", "LA", "PA") and "transparency" not in probe.info:
            return None
    with open(path, "rb") as handle:
        image = imaging.open_image(handle.read(), path)
    image.load()
    with contextlib.suppress(Exception):  # a broken EXIF block must not cost the image
        image = ImageOps.exif_transpose(image)
    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    canvas.alpha_composite(rgba)
    return canvas.convert("RGB")


class WDTaggerBackend(Backend):
    """Args (from the node): general_threshold, character_threshold.

    Result per image: `{"ratings": {name: p}, "general": [[tag, p], ...], "character": [[tag, p], ...]}`,
    general and character tags at or above their threshold, in the tag list's order (kohya's order)."""

    def load(self) -> None:
        folder = self.model.path / self.model.spec.subfolder if self.model.spec.subfolder else self.model.path
        import numpy as np

        self.names, categories = read_tags(folder / TAGS_FILE)
        self.index = {c: np.flatnonzero(np.asarray(categories) == c) for c in (RATING, GENERAL, CHARACTER)}
        self.session = onnx_session.open_session(folder / MODEL_FILE, self.device, log)
        model_input = self.session.get_inputs()[0]
        shape = list(model_input.shape)
        if len(shape) != 4 or onnx_session.fixed_dim(shape[3]) not in (3, None):
            raise BeprepareError(
                f"{folder / MODEL_FILE}: expected a WD tagger's NHWC input [batch, size, size, 3], the model "
                f"takes {model_input.name} {shape}"
            )
        self.input_name = model_input.name
        self.size = onnx_session.fixed_dim(shape[1]) or DEFAULT_SIZE
        self.fixed_batch = onnx_session.fixed_dim(shape[0])
        outputs = onnx_session.fixed_dim(list(self.session.get_outputs()[0].shape)[-1])
        if outputs is not None and outputs != len(self.names):
            raise BeprepareError(
                f"{folder}: {MODEL_FILE} has {outputs} outputs but {TAGS_FILE} lists {len(self.names)} tags; "
                "the two files come from different models"
            )

    def prepare(self, image: Any, item: WorkItem) -> Any:
        flat = flatten_on_white(item.path)
        return to_input(flat if flat is not None else image, self.size)

    def run(self, batch: list[Any]) -> list[Any]:
        import numpy as np

        step = self.fixed_batch or len(batch)
        probs = []
        for start in range(0, len(batch), step):
            chunk = batch[start : start + step]
            inputs = np.stack(chunk + [np.zeros_like(chunk[0])] * (step - len(chunk)))  # a fixed batch: pad
            probs.extend(onnx_session.run(self.session, {self.input_name: inputs})[0][: len(chunk)])
        return [self._select(row) for row in probs]

    def _select(self, row: Any) -> dict[str, Any]:
        import numpy as np

        if len(row) != len(self.names):
            raise BeprepareError(
                f"the model returned {len(row)} scores per image but {TAGS_FILE} lists {len(self.names)} tags"
            )
        row = np.asarray(row, dtype=np.float64)
        out: dict[str, Any] = {"ratings": {self.names[i]: float(row[i]) for i in self.index[RATING]}}
        for category, key, threshold in (
            (GENERAL, "general", self.args["general_threshold"]),
            (CHARACTER, "character", self.args["character_threshold"]),
        ):
            index = self.index[category]
            picked = index[row[index] >= threshold]  # ascending: the tag list's order
            out[key] = [[self.names[i], float(row[i])] for i in picked]
        return out

    def close(self) -> None:
        self.session = None
