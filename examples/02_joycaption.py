"""Auto-captioning with JoyCaption: a descriptive caption per image from a local vision-language model.

    PHOTOS=/path/to/photos python examples/02_joycaption.py

JoyCaption Beta One is an 8B LLaVA model (~17 GB in bf16; `quantize="4bit"` fits a small GPU). The first run
downloads it into the Hugging Face cache; every caption is cached per image, so a re-run captions only new
images. `JoyCaptionAlphaOne` / `JoyCaptionAlphaTwo` are the original's older checkpoints, with the same use.
"""

import os
from pathlib import Path

import beprepared_dagster
from beprepared_dagster import ConvertFormat, FilterBySize, JoyCaptionBetaOne, Load, Save, Workspace

PHOTOS = os.environ.get("PHOTOS") or Path(beprepared_dagster.__file__).parent / "demo" / "images"

with Workspace(name="joycaption") as workspace:
    (
        Load(PHOTOS)
        >> FilterBySize(min_edge=512)
        >> ConvertFormat("JPEG")
        >> JoyCaptionBetaOne(caption_type="descriptive", caption_length="long")
        >> Save
    )
    workspace.run()
