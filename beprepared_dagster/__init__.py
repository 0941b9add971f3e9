"""beprepared-dagster: image-dataset preparation for diffusion fine-tuning, as Dagster assets.

```python
from beprepared_dagster import *

with Workspace("mydataset") as workspace:
    Load("/path/to/photos") >> FilterBySize(min_edge=512) >> ConvertFormat("JPEG") >> SetCaption("ohwx dog") >> Save
    workspace.run()
```
"""

from beprepared_dagster.errors import BadImage, RunFailed, WorkflowError
from beprepared_dagster.nodes import (
    AddTags,
    Apply,
    Concat,
    ConvertFormat,
    CropToAspect,
    Downscale,
    DownscaleMethod,
    ExactDedupe,
    Fail,
    Filter,
    FilterByAspectRatio,
    FilterBySize,
    FuzzyDedupe,
    HumanCaption,
    HumanFilter,
    HumanTag,
    Image,
    Info,
    JoyCaptionBetaOne,
    Load,
    Map,
    MapCaption,
    Passthrough,
    RemoveTags,
    RewriteTags,
    Save,
    SaveImageFolder,
    SaveKohya,
    Set,
    SetCaption,
    Shuffle,
    Sleep,
    Sorted,
    Take,
    Upscale,
    UpscaleMethod,
    VLMCaption,
)
from beprepared_dagster.workflow import Node, Workflow, Workspace

__version__ = "0.1.0"

__all__ = [
    "AddTags",
    "Apply",
    "BadImage",
    "Concat",
    "ConvertFormat",
    "CropToAspect",
    "Downscale",
    "DownscaleMethod",
    "ExactDedupe",
    "Fail",
    "Filter",
    "FilterByAspectRatio",
    "FilterBySize",
    "FuzzyDedupe",
    "HumanCaption",
    "HumanFilter",
    "HumanTag",
    "Image",
    "Info",
    "JoyCaptionBetaOne",
    "Load",
    "Map",
    "MapCaption",
    "Node",
    "Passthrough",
    "RemoveTags",
    "RewriteTags",
    "RunFailed",
    "Save",
    "SaveImageFolder",
    "SaveKohya",
    "Set",
    "SetCaption",
    "Shuffle",
    "Sleep",
    "Sorted",
    "Take",
    "Upscale",
    "UpscaleMethod",
    "VLMCaption",
    "Workflow",
    "WorkflowError",
    "Workspace",
]
