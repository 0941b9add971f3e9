"""Node implementations, one file per family. Dagster-free and Gradio-free.

Node classes load on first use (`beprepared_dagster.nodes.Load` imports `nodes/load.py` only): a workflow
pays for the ~70 node modules it uses, not for all of them (~0.1 s at every start).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name → the module (under beprepared_dagster.nodes) that defines it
_WHERE = {
    "AestheticScore": "aesthetic",
    "Anonymize": "anonymize",
    "AnonymizeMethod": "anonymize",
    "GeminiCaption": "api_caption",
    "GPT4oCaption": "api_caption",
    "OpenAICaption": "api_caption",
    "FilterNode": "base",
    "HumanNode": "base",
    "Image": "base",
    "ImageNode": "base",
    "NodeContext": "base",
    "Outcome": "base",
    "PropertyNode": "base",
    "SetNode": "base",
    "TransformNode": "base",
    "MapCaption": "captions",
    "Set": "captions",
    "SetCaption": "captions",
    "Concat": "concat",
    "ConvertFormat": "convert_format",
    "CropToAspect": "crop",
    "ExactDedupe": "dedupe",
    "FuzzyDedupe": "dedupe",
    "ClipEmbed": "embeddings",
    "Filter": "filters",
    "FilterByAspectRatio": "filters",
    "FilterBySize": "filters",
    "Flip": "flip",
    "Florence2Caption": "florence2",
    "Florence2Task": "florence2",
    "Gemma3Caption": "gemma3_caption",
    "HumanCaption": "human",
    "HumanFilter": "human",
    "HumanTag": "human",
    "JoyCaptionAlphaOne": "joycaption_alpha",
    "JoyCaptionAlphaTwo": "joycaption_alpha",
    "LlamaCaption": "llama_caption",
    "LLMCaptionTransform": "llm_text",
    "LLMCaptionVariations": "llm_text",
    "Load": "load",
    "MolmoCaption": "molmo_caption",
    "NudeNet": "nudenet",
    "QwenVLCaption": "qwen_caption",
    "HumanRank": "rank",
    "Save": "save",
    "SaveImageFolder": "save",
    "SaveKohya": "save",
    "Downscale": "scaling",
    "DownscaleMethod": "scaling",
    "Upscale": "scaling",
    "UpscaleMethod": "scaling",
    "Shuffle": "setlevel",
    "Sorted": "setlevel",
    "Take": "setlevel",
    "SmartHumanFilter": "smart",
    "SmartHumanTag": "smart_tag",
    "AddTags": "tags",
    "RemoveTags": "tags",
    "RewriteTags": "tags",
    "Apply": "utils",
    "Fail": "utils",
    "Info": "utils",
    "Map": "utils",
    "Passthrough": "utils",
    "Sleep": "utils",
    "JoyCaptionBetaOne": "vlm_caption",
    "VLMCaption": "vlm_caption",
    "EdgeWatermarkRemoval": "watermark",
    "WDTagger": "wd_tagger",
    "XGenMMCaption": "xgenmm_caption",
}

if TYPE_CHECKING:  # for type checkers and editors; at run time, __getattr__ below
    from beprepared_dagster.nodes.aesthetic import AestheticScore
    from beprepared_dagster.nodes.anonymize import Anonymize, AnonymizeMethod
    from beprepared_dagster.nodes.api_caption import GeminiCaption, GPT4oCaption, OpenAICaption
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
    from beprepared_dagster.nodes.crop import CropToAspect
    from beprepared_dagster.nodes.dedupe import ExactDedupe, FuzzyDedupe
    from beprepared_dagster.nodes.embeddings import ClipEmbed
    from beprepared_dagster.nodes.filters import Filter, FilterByAspectRatio, FilterBySize
    from beprepared_dagster.nodes.flip import Flip
    from beprepared_dagster.nodes.florence2 import Florence2Caption, Florence2Task
    from beprepared_dagster.nodes.gemma3_caption import Gemma3Caption
    from beprepared_dagster.nodes.human import HumanCaption, HumanFilter, HumanTag
    from beprepared_dagster.nodes.joycaption_alpha import JoyCaptionAlphaOne, JoyCaptionAlphaTwo
    from beprepared_dagster.nodes.llama_caption import LlamaCaption
    from beprepared_dagster.nodes.llm_text import LLMCaptionTransform, LLMCaptionVariations
    from beprepared_dagster.nodes.load import Load
    from beprepared_dagster.nodes.molmo_caption import MolmoCaption
    from beprepared_dagster.nodes.nudenet import NudeNet
    from beprepared_dagster.nodes.qwen_caption import QwenVLCaption
    from beprepared_dagster.nodes.rank import HumanRank
    from beprepared_dagster.nodes.save import Save, SaveImageFolder, SaveKohya
    from beprepared_dagster.nodes.scaling import Downscale, DownscaleMethod, Upscale, UpscaleMethod
    from beprepared_dagster.nodes.setlevel import Shuffle, Sorted, Take
    from beprepared_dagster.nodes.smart import SmartHumanFilter
    from beprepared_dagster.nodes.smart_tag import SmartHumanTag
    from beprepared_dagster.nodes.tags import AddTags, RemoveTags, RewriteTags
    from beprepared_dagster.nodes.utils import Apply, Fail, Info, Map, Passthrough, Sleep
    from beprepared_dagster.nodes.vlm_caption import JoyCaptionBetaOne, VLMCaption
    from beprepared_dagster.nodes.watermark import EdgeWatermarkRemoval
    from beprepared_dagster.nodes.wd_tagger import WDTagger
    from beprepared_dagster.nodes.xgenmm_caption import XGenMMCaption


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


__all__ = [
    "AddTags",
    "Anonymize",
    "AnonymizeMethod",
    "AestheticScore",
    "Apply",
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
    "FilterNode",
    "Flip",
    "Florence2Caption",
    "Florence2Task",
    "FuzzyDedupe",
    "Gemma3Caption",
    "GPT4oCaption",
    "GeminiCaption",
    "HumanCaption",
    "HumanFilter",
    "HumanNode",
    "HumanRank",
    "HumanTag",
    "Image",
    "ImageNode",
    "JoyCaptionAlphaOne",
    "JoyCaptionAlphaTwo",
    "JoyCaptionBetaOne",
    "Info",
    "LLMCaptionTransform",
    "LLMCaptionVariations",
    "LlamaCaption",
    "Load",
    "Map",
    "MapCaption",
    "MolmoCaption",
    "NodeContext",
    "NudeNet",
    "OpenAICaption",
    "Outcome",
    "Passthrough",
    "PropertyNode",
    "QwenVLCaption",
    "RemoveTags",
    "RewriteTags",
    "Save",
    "SaveImageFolder",
    "SaveKohya",
    "Set",
    "SetCaption",
    "SetNode",
    "Shuffle",
    "Sleep",
    "SmartHumanFilter",
    "SmartHumanTag",
    "Sorted",
    "Take",
    "TransformNode",
    "Upscale",
    "UpscaleMethod",
    "VLMCaption",
    "WDTagger",
    "XGenMMCaption",
]
