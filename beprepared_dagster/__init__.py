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
    Concat,
    ConvertFormat,
    Filter,
    FilterByAspectRatio,
    FilterBySize,
    HumanCaption,
    HumanFilter,
    HumanTag,
    Image,
    Load,
    MapCaption,
    Save,
    Set,
    SetCaption,
)
from beprepared_dagster.workflow import Node, Workflow, Workspace

__version__ = "0.1.0"

__all__ = [
    "BadImage",
    "Concat",
    "ConvertFormat",
    "Filter",
    "FilterByAspectRatio",
    "FilterBySize",
    "HumanCaption",
    "HumanFilter",
    "HumanTag",
    "Image",
    "Load",
    "MapCaption",
    "Node",
    "RunFailed",
    "Save",
    "Set",
    "SetCaption",
    "Workflow",
    "WorkflowError",
    "Workspace",
]
