"""The 100 most aesthetic images: score every image with the LAION aesthetic predictor, keep the best 100.

    PHOTOS=/path/to/photos python examples/04_top_aesthetic.py

`AestheticScore` writes `aesthetic_score` (higher is better); `Sorted` orders the dataset by it and `Take`
keeps the first 100. Adding images later re-decides the top 100 without scoring the old images again.
"""

import os
from pathlib import Path

import beprepared_dagster
from beprepared_dagster import AestheticScore, Load, Save, Sorted, Take, Workspace

PHOTOS = os.environ.get("PHOTOS") or Path(beprepared_dagster.__file__).parent / "demo" / "images"

with Workspace(name="top_aesthetic") as workspace:
    (
        Load(PHOTOS)
        >> AestheticScore()
        >> Sorted(key=lambda image: image.aesthetic_score, reverse=True)
        >> Take(100)
        >> Save
    )
    workspace.run()
