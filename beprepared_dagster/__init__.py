"""beprepared-dagster: image-dataset preparation for diffusion fine-tuning, as Dagster assets.

```python
from beprepared_dagster import *

with Workspace("mydataset") as workspace:
    Load("/path/to/photos") >> FilterBySize(min_edge=512) >> ConvertFormat("JPEG") >> SetCaption("ohwx dog") >> Save
    workspace.run()
```
"""

from typing import TYPE_CHECKING, Any

from beprepared_dagster.errors import BadImage, RunFailed, WorkflowError
from beprepared_dagster.workflow import Node, Workflow, Workspace


def _version() -> str:
    """The installed package's version (pyproject.toml is the only place it is written)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("beprepared-dagster")
    except PackageNotFoundError:  # a source tree on sys.path that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    """Node classes and `__version__` on first use: `from beprepared_dagster import Load, Save` imports those
    nodes' modules only (see `beprepared_dagster.nodes`)."""
    if name == "__version__":
        value: Any = _version()
    elif name in __all__:  # a node class (everything else __all__ names is imported above)
        import beprepared_dagster.nodes as nodes

        value = getattr(nodes, name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | {"__version__"})


if TYPE_CHECKING:
    from beprepared_dagster.nodes import (
        AddTags,
        AestheticScore,
        Anonymize,
        AnonymizeMethod,
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
