"""kohya sd-scripts layout (`SaveKohya`): `<repeats>_<class tokens>/` folders under the export folder.

The export folder is sd-scripts' `train_data_dir` (the *parent* of the repeat folders). sd-scripts splits a
folder name on its first `_`: the integer before it is the repeat count, the rest the class tokens, which are
the caption of images without a caption file. Images and captions sit directly in the repeat folder (it does
not recurse). With `dataset_toml=True` a `dataset.toml` for `--dataset_config` lists every folder as a
DreamBooth-style subset (`image_dir`, `num_repeats`, `class_tokens`, `caption_extension`…); sd-scripts then
takes the repeats from the TOML rather than the folder names, so the two are written to agree.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from beprepared_dagster.export.atomic import PlannedFile, text_file
from beprepared_dagster.export.entries import Entry
from beprepared_dagster.export.folder import image_and_caption_files

DATASET_TOML = "dataset.toml"
_UNSAFE = re.compile(r"[/\\\x00-\x1f]+")


def concept_name(value: Any) -> str | None:
    """A concept (class tokens) usable as a folder name: no path separators or control characters."""
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None:
        return None
    text = " ".join(_UNSAFE.sub(" ", str(value)).split()).lstrip(". ")  # no hidden or `..` folders
    return text[:100].rstrip() or None


def folder_namer(node: Any) -> Callable[[dict[str, Any]], str]:
    """Each image's repeat folder, `<repeats>_<class tokens>`, from the node's options."""
    default = concept_name(node.class_tokens or node.trigger) or "img"

    def folder_of(props: dict[str, Any]) -> str:
        concept = (concept_name(props.get(node.concept_prop)) if node.concept_prop else None) or default
        repeats = node.repeats.get(concept, 1) if isinstance(node.repeats, dict) else node.repeats
        return f"{repeats}_{concept}"

    return folder_of


def kohya_files(entries: list[Entry], node: Any, target: Path) -> list[PlannedFile]:
    """Images and captions in their repeat folders, plus `dataset.toml` when asked for."""
    planned = image_and_caption_files(entries, node)
    if node.dataset_toml:
        planned.append(text_file(DATASET_TOML, dataset_toml(entries, node, target)))
    return planned


def dataset_toml(entries: list[Entry], node: Any, target: Path) -> str:
    """sd-scripts' `--dataset_config` for the repeat folders (absolute `image_dir`s inside `target`)."""
    folders = Counter(e.folder for e in entries)
    resolution = node.resolution if isinstance(node.resolution, list) else [node.resolution] * 2
    general = {
        "caption_extension": node.caption_ext,
        "shuffle_caption": False,
        "enable_bucket": True,
        # Never upscale silently: small images get a smaller bucket instead of being enlarged.
        "bucket_no_upscale": True,
        "bucket_reso_steps": 64,
        "min_bucket_reso": 256,
        "max_bucket_reso": 2 * max(resolution),
    }
    if node.trigger:
        general["keep_tokens"] = len(node.trigger.split(","))  # keep the trigger first when shuffling
    lines = [
        "# Written by beprepared-dagster for kohya sd-scripts: --dataset_config dataset.toml",
        "# With a dataset config, repeats come from num_repeats below, not from the folder names.",
        "[general]",
        *(f"{key} = {_toml(value)}" for key, value in general.items()),
        "",
        "[[datasets]]",
        f"resolution = {_toml(resolution)}",
        "batch_size = 1",
    ]
    for folder in sorted(folders):
        repeats, _, class_tokens = folder.partition("_")
        lines += [
            "",
            "  [[datasets.subsets]]",
            f"  image_dir = {_toml(str(target / folder))}",
            f"  num_repeats = {int(repeats)}",
            f"  class_tokens = {_toml(class_tokens)}",
            f"  # {folders[folder]} image file(s)",
        ]
        if node.multi_caption == "lines":
            lines.append("  enable_wildcard = true  # pick a random line of each caption file")
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    """A TOML value. JSON's string escapes are valid in TOML basic strings; non-ASCII stays raw (TOML has
    no surrogate-pair escapes) and DEL, which JSON leaves alone but TOML forbids, is escaped."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    return str(value)


def steps_per_epoch(entries: list[Entry]) -> int:
    """Σ repeats × images, what sd-scripts reports as the number of training images per epoch."""
    return sum(int(e.folder.partition("_")[0]) for e in entries)
