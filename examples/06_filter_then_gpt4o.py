"""Filter by hand, then caption with GPT-4o: a person keeps or rejects each image, GPT-4o captions the kept.

    export OPENAI_API_KEY=sk-...
    PHOTOS=/path/to/photos python examples/06_filter_then_gpt4o.py

The run stops at `HumanFilter`, prints the labeling app's URL (http://127.0.0.1:7860) and waits: ↑/W keeps,
↓/S rejects. Only kept images are sent to the API, each once (captions are cached per image). Set
`OPENAI_BASE_URL` to send the same requests to your own OpenAI-compatible server instead.
"""

import os
from pathlib import Path

import beprepared_dagster
from beprepared_dagster import ConvertFormat, FilterBySize, GPT4oCaption, HumanFilter, Load, Save, Workspace

PHOTOS = os.environ.get("PHOTOS") or Path(beprepared_dagster.__file__).parent / "demo" / "images"

with Workspace(name="filter_then_gpt4o") as workspace:
    (
        Load(PHOTOS)
        >> FilterBySize(min_edge=512)
        >> ConvertFormat("JPEG")
        >> HumanFilter
        >> GPT4oCaption(parallel=8)
        >> Save
    )
    workspace.run()
