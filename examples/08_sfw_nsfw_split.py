"""SFW/NSFW split: caption images with nudity locally (JoyCaption) and the others with GPT-4o, then merge.

    pip install 'beprepared-dagster[nsfw]'
    export OPENAI_API_KEY=sk-...
    PHOTOS=/path/to/photos python examples/08_sfw_nsfw_split.py

Branches are plain variables: `all_images` feeds two filters, and `Concat` merges the two captioned branches
into one export. Each image takes exactly one branch, so none is captioned twice.
"""

import os
from pathlib import Path

import beprepared_dagster
from beprepared_dagster import (
    Concat,
    ConvertFormat,
    Filter,
    FilterBySize,
    GPT4oCaption,
    JoyCaptionBetaOne,
    Load,
    NudeNet,
    Save,
    Workspace,
)

PHOTOS = os.environ.get("PHOTOS") or Path(beprepared_dagster.__file__).parent / "demo" / "images"

with Workspace(name="sfw_nsfw_split") as workspace:
    all_images = Load(PHOTOS) >> FilterBySize(min_edge=512) >> ConvertFormat("JPEG") >> NudeNet()
    with_nudity = all_images >> Filter(lambda image: image.has_nudity) >> JoyCaptionBetaOne()
    without_nudity = all_images >> Filter(lambda image: not image.has_nudity) >> GPT4oCaption()
    Concat(with_nudity, without_nudity) >> Save
    workspace.run()
