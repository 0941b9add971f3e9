"""Florence-2 phrase grounding (`<CAPTION_TO_PHRASE_GROUNDING>` + a phrase): the boxes where the phrase is
seen, for EdgeWatermarkRemoval.

Boxes are read from the `<loc_N>` tokens of the answer (four per box, 1000 bins per axis, a bin's centre as
transformers' Florence-2 post-processor dequantizes them) and returned relative to the image (0–1), so they
do not depend on the size the image was shrunk to for the model.
"""

from __future__ import annotations

import re
from typing import Any

from beprepared_dagster.models.backends.florence2 import Florence2Backend

_BOX = re.compile(r"([^<]*)<loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)>")
_SPECIAL = re.compile(r"</?s>|<pad>|<unk>")
BINS = 1000


def parse_grounding(text: str) -> dict[str, list[Any]]:
    """{"boxes": [[x1, y1, x2, y2] in 0–1], "labels": [phrase per box]} from a decoded answer."""
    boxes, labels, label = [], [], ""
    for match in _BOX.finditer(_SPECIAL.sub("", text)):
        phrase = match.group(1).strip()
        label = phrase or label  # a phrase with several boxes is written once, before the first
        x1, y1, x2, y2 = ((int(v) + 0.5) / BINS for v in match.groups()[1:])
        boxes.append([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)])
        labels.append(label)
    return {"boxes": boxes, "labels": labels}


class Florence2GroundingBackend(Florence2Backend):
    """Args (from the node): task (the grounding token followed by the phrase), max_new_tokens, temperature,
    top_p, max_edge."""

    def decode(self, new_tokens: Any, images: list[Any]) -> list[Any]:
        texts = self.processor.batch_decode(new_tokens, skip_special_tokens=False)
        return [parse_grounding(text) for text in texts]
