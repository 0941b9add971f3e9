"""Trigger-word captioning: every image gets the same caption, the trigger word a LoRA learns.

    PHOTOS=/path/to/photos python examples/01_trigger_word.py

Images smaller than 512 px on their shorter side are dropped, everything is re-encoded as JPEG, byte-identical
copies are removed, and each image is captioned "ohwx person". No model, no network.
"""

import os
from pathlib import Path

import beprepared_dagster
from beprepared_dagster import ConvertFormat, ExactDedupe, FilterBySize, Load, Save, SetCaption, Workspace

# Your photos (default: the images bundled with the package).
PHOTOS = os.environ.get("PHOTOS") or Path(beprepared_dagster.__file__).parent / "demo" / "images"

with Workspace(name="trigger_word") as workspace:  # the workspace: $BEPREPARED_WORKSPACE or ./workspace
    (
        Load(PHOTOS)
        >> FilterBySize(min_edge=512)
        >> ConvertFormat("JPEG")
        >> ExactDedupe
        >> SetCaption("ohwx person")
        >> Save
    )
    workspace.run()
