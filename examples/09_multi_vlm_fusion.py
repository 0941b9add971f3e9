"""Multi-VLM fusion: several models caption each image into their own property, then an LLM writes one
caption from all of them.

    export OPENAI_API_KEY=sk-...
    PHOTOS=/path/to/photos python examples/09_multi_vlm_fusion.py

Each captioner writes `target_prop`, so the captions sit side by side; the LLM prompt is a template over those
properties (it reads only them, so the fused caption is recomputed only when one of them changes). The local
models need a large GPU each; drop any you cannot run.
"""

import os
from pathlib import Path

import beprepared_dagster
from beprepared_dagster import (
    GPT4oCaption,
    JoyCaptionBetaOne,
    LlamaCaption,
    LLMCaptionTransform,
    Load,
    QwenVLCaption,
    Save,
    Workspace,
    XGenMMCaption,
)

PHOTOS = os.environ.get("PHOTOS") or Path(beprepared_dagster.__file__).parent / "demo" / "images"

FUSION_PROMPT = """Several models captioned the same image. Write one accurate caption for a text-to-image
training set: keep the details they agree on, drop what only one of them claims, no preamble.

JoyCaption: {joycaption}
GPT-4o: {gpt4o_caption}
xGen-MM: {xgenmm_caption}
Qwen-VL: {qwen_caption}
Llama: {llama_caption}
"""

with Workspace(name="multi_vlm_fusion") as workspace:
    (
        Load(PHOTOS)
        >> JoyCaptionBetaOne(target_prop="joycaption")
        >> GPT4oCaption(target_prop="gpt4o_caption")
        >> XGenMMCaption(target_prop="xgenmm_caption")
        >> QwenVLCaption(target_prop="qwen_caption")
        >> LlamaCaption(target_prop="llama_caption")
        >> LLMCaptionTransform(model="gpt-4o-2024-08-06", prompt=FUSION_PROMPT, target_prop="caption")
        >> Save
    )
    workspace.run()
