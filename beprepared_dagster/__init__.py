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
    Anonymize,
    AnonymizeMethod,
    AestheticScore,
    Apply,
    ClipEmbed,
    Concat,
    ConvertFormat,
    CropToAspect,
    Downscale,
    DownscaleMethod,
    EdgeWatermarkRemoval,
    ExactDedupe,
    Fail,
    Filter,
    FilterByAspectRatio,
    FilterBySize,
    Flip,
    Florence2Caption,
    Florence2Task,
    FuzzyDedupe,
    GeminiCaption,
    Gemma3Caption,
    GPT4oCaption,
    HumanCaption,
    HumanFilter,
    HumanRank,
    HumanTag,
    Image,
    Info,
    JoyCaptionAlphaOne,
    JoyCaptionAlphaTwo,
    JoyCaptionBetaOne,
    LlamaCaption,
    LLMCaptionTransform,
    LLMCaptionVariations,
    Load,
    Map,
    MapCaption,
    MolmoCaption,
    NudeNet,
    OpenAICaption,
    Passthrough,
    QwenVLCaption,
    RemoveTags,
    RewriteTags,
    Save,
    SaveImageFolder,
    SaveKohya,
    Set,
    SetCaption,
    Shuffle,
    Sleep,
    SmartHumanFilter,
    SmartHumanTag,
    Sorted,
    Take,
    Upscale,
    UpscaleMethod,
    VLMCaption,
    WDTagger,
    XGenMMCaption,
)
from beprepared_dagster.workflow import Node, Workflow, Workspace



def _version() -> str:
    """The installed package's version (pyproject.toml is the only place it is written)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("beprepared-dagster")
    except PackageNotFoundError:  # a source tree on sys.path that was never installed
        return "0+unknown"


__version__ = _version()

__all__ = [
    "AddTags",
    "Anonymize",
    "AnonymizeMethod",
    "AestheticScore",
    "Apply",
    "BadImage",
    "ClipEmbed",
    "Concat",
    "ConvertFormat",
    "CropToAspect",
    "Downscale",
    "DownscaleMethod",
    "EdgeWatermarkRemoval",
    "ExactDedupe",
    "Fail",
    "Filter",
    "FilterByAspectRatio",
    "FilterBySize",
    "Flip",
    "Florence2Caption",
    "Florence2Task",
    "FuzzyDedupe",
    "Gemma3Caption",
    "GPT4oCaption",
    "GeminiCaption",
    "HumanCaption",
    "HumanFilter",
    "HumanRank",
    "HumanTag",
    "Image",
    "Info",
    "JoyCaptionAlphaOne",
    "JoyCaptionAlphaTwo",
    "JoyCaptionBetaOne",
    "LLMCaptionTransform",
    "LLMCaptionVariations",
    "LlamaCaption",
    "Load",
    "Map",
    "MapCaption",
    "MolmoCaption",
    "Node",
    "NudeNet",
    "OpenAICaption",
    "Passthrough",
    "QwenVLCaption",
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
    "SmartHumanFilter",
    "SmartHumanTag",
    "Sorted",
    "Take",
    "Upscale",
    "UpscaleMethod",
    "VLMCaption",
    "WDTagger",
    "XGenMMCaption",
    "Workflow",
    "WorkflowError",
    "Workspace",
]
