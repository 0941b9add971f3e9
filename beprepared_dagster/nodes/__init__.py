"""Node implementations, one file per family. Dagster-free and Gradio-free."""

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
