"""Node implementations, one file per family. Dagster-free and Gradio-free."""

from beprepared_dagster.nodes.base import (
    FilterNode,
    HumanNode,
    Image,
    ImageNode,
    NodeContext,
    Outcome,
    PropertyNode,
    SetNode,
    TransformNode,
)
from beprepared_dagster.nodes.captions import MapCaption, Set, SetCaption
from beprepared_dagster.nodes.concat import Concat
from beprepared_dagster.nodes.convert_format import ConvertFormat
from beprepared_dagster.nodes.filters import Filter, FilterByAspectRatio, FilterBySize
from beprepared_dagster.nodes.human import HumanCaption, HumanFilter, HumanTag
from beprepared_dagster.nodes.load import Load
from beprepared_dagster.nodes.save import Save

__all__ = [
    "Concat",
    "ConvertFormat",
    "Filter",
    "FilterByAspectRatio",
    "FilterBySize",
    "FilterNode",
    "HumanCaption",
    "HumanFilter",
    "HumanNode",
    "HumanTag",
    "Image",
    "ImageNode",
    "Load",
    "MapCaption",
    "NodeContext",
    "Outcome",
    "PropertyNode",
    "Save",
    "Set",
    "SetCaption",
    "SetNode",
    "TransformNode",
]
