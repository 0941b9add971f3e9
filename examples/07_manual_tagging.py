"""Manual tagging: a person filters, then tags each image; the tags go into the caption files.

    PHOTOS=/path/to/photos python examples/07_manual_tagging.py

Two tabs in the labeling app (http://127.0.0.1:7860): keep or reject, then toggle tags with the number keys.
`Save(tags_prop="tags")` writes the chosen tags before the caption, e.g. `labrador, a photo of a dog`. Labels
are stored per image and survive any change to the workflow above them.
"""

import os
from pathlib import Path

import beprepared_dagster
from beprepared_dagster import (
    ConvertFormat,
    FilterBySize,
    HumanFilter,
    HumanTag,
    Load,
    Save,
    SetCaption,
    Workspace,
)

PHOTOS = os.environ.get("PHOTOS") or Path(beprepared_dagster.__file__).parent / "demo" / "images"

with Workspace(name="manual_tagging") as workspace:
    (
        Load(PHOTOS)
        >> FilterBySize(min_edge=512)
        >> ConvertFormat("JPEG")
        >> HumanFilter
        >> HumanTag(tags=["labrador", "golden retriever", "poodle"])
        >> SetCaption("a photo of a dog")
        >> Save(tags_prop="tags")
    )
    workspace.run()
