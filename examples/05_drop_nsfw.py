"""Drop NSFW images: detect nudity with NudeNet and keep only the images without it.

    pip install 'beprepared-dagster[nsfw]'     # NudeNet is AGPL-3.0, hence an optional extra
    PHOTOS=/path/to/photos python examples/05_drop_nsfw.py

`NudeNet` writes `has_nudity` (a plain bool the predicate reads directly; the original's example tested the
property object, which is always truthy, and so dropped every image).
"""

import os
from pathlib import Path

import beprepared_dagster
from beprepared_dagster import Filter, Load, NudeNet, Save, Workspace

PHOTOS = os.environ.get("PHOTOS") or Path(beprepared_dagster.__file__).parent / "demo" / "images"

with Workspace(name="drop_nsfw") as workspace:
    Load(PHOTOS) >> NudeNet(threshold=0.5) >> Filter(lambda image: not image.has_nudity) >> Save
    workspace.run()
