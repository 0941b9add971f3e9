"""Fuzzy dedupe: drop near-duplicates (resized, re-encoded or slightly edited copies), keeping the largest.

    PHOTOS=/path/to/photos python examples/03_fuzzy_dedupe.py

The default compares perceptual hashes (no model). Open `fuzzy_dedupe.html` in the stage's debug folder to see
every group it found. With CLIP embeddings instead (the original's way), put `ClipEmbed()` before it and use
`FuzzyDedupe(method="clip", threshold=0.95)`.
"""

import os
from pathlib import Path

import beprepared_dagster
from beprepared_dagster import FuzzyDedupe, Load, Save, Workspace

PHOTOS = os.environ.get("PHOTOS") or Path(beprepared_dagster.__file__).parent / "demo" / "images"

with Workspace(name="fuzzy_dedupe") as workspace:
    Load(PHOTOS) >> FuzzyDedupe(threshold=0.9) >> Save
    workspace.run()
