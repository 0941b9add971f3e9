"""The Save nodes: each writes the kept images in one trainer layout (the writers live in `export/`).

| node              | layout                                                         | read by                      |
|-------------------|----------------------------------------------------------------|------------------------------|
| `Save`            | the original's flat folder: image + caption + `.json` sidecar  | every trainer (sidecar captions) |
| `SaveKohya`       | `N_concept/` repeat folders under a parent, optional `dataset.toml` | kohya sd-scripts, kohya_ss GUI |
| `SaveImageFolder` | `train/` images + `metadata.jsonl` (`file_name`, `text`, …)    | HF `datasets` imagefolder, diffusers scripts |

All share the caption options (which property, tags rendering, trigger word, several captions per image) and
the export guarantees: incremental, atomic, never replacing a folder beprepared did not write.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from beprepared_dagster.nodes.base import SinkNode
from beprepared_dagster.nodes.imaging import IMAGE_EXTENSIONS

MULTI_CAPTION_MODES = ("files", "lines", "first")
_PROP = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


class SaveNode(SinkNode):
    """Base of the Save nodes: the caption options every layout shares (validated here).

    Args:
        captions: write captions (a caption file, or the caption column) when an image has a caption, tags or a
            trigger.
        caption_ext: caption file extension (".txt" or ".caption").
        caption_prop: the property holding the caption (a string, or a list of strings); None for none.
        tags_prop: a property holding tags (e.g. "tags"); rendered and put before the caption.
        tag_spaces: underscores in tags become spaces (tags of 3 characters or fewer, like `^_^`, are kept).
        escape_parens: escape `(` `)` in tags as `\\(` `\\)` (for prompt UIs; kohya reads captions literally).
        first_tags: tags moved to the front when present (e.g. ["1girl", "1boy"]).
        trigger: trigger word put first in every caption, or replacing a literal `[trigger]`.
        multi_caption: several captions per image: "files" (an image copy per caption), "lines" (one
            caption per line, for trainers that pick a random line) or "first".
        stats: write `dataset_stats.html` (image sizes, buckets, tags, caption lengths) into the export.
    """

    layout: ClassVar[str] = "original"
    default_dir: ClassVar[str] = "output"
    caption_ext: str = ".txt"
    sidecars: bool = False

    def _init_common(
        self,
        dir: Any,
        captions: bool,
        caption_prop: str | None,
        tags_prop: str | None,
        tag_spaces: bool,
        escape_parens: bool,
        first_tags: Any,
        trigger: str | None,
        multi_caption: str,
        stats: bool,
    ) -> None:
        if dir is not None and not isinstance(dir, str | os.PathLike):
            raise ValueError(f"dir must be a folder path, got {dir!r}")
        for name, value in (("caption_prop", caption_prop), ("tags_prop", tags_prop)):
            if value is not None and not (isinstance(value, str) and _PROP.fullmatch(value)):
                raise ValueError(f"{name} must be a property name such as 'caption' or 'tags', got {value!r}")
        if multi_caption not in MULTI_CAPTION_MODES:
            raise ValueError(
                f"multi_caption must be one of {', '.join(map(repr, MULTI_CAPTION_MODES))}, got {multi_caption!r}"
            )
        if isinstance(first_tags, str) or not all(isinstance(t, str) and t.strip() for t in first_tags or ()):
            raise ValueError(
                f"first_tags must be a list of tags such as ['1girl', '1boy'], got {first_tags!r}"
            )
        if trigger is not None and (not isinstance(trigger, str) or not trigger.strip() or "\n" in trigger):
            raise ValueError(f"trigger must be a non-empty one-line string such as 'ohwx', got {trigger!r}")
        self.dir = dir
        self.captions = bool(captions)
        self.caption_prop, self.tags_prop = caption_prop, tags_prop
        self.tag_spaces, self.escape_parens = bool(tag_spaces), bool(escape_parens)
        self.first_tags = [t.strip() for t in first_tags or ()]
        self.trigger = trigger.strip() if trigger else None
        self.multi_caption = multi_caption
        self.stats = bool(stats)


def _check_caption_ext(caption_ext: Any) -> str:
    if not isinstance(caption_ext, str) or not re.fullmatch(r"\.[A-Za-z0-9_-]+", caption_ext):
        raise ValueError(f"caption_ext must look like '.txt' or '.caption', got {caption_ext!r}")
    if (
        caption_ext.lower() in (".json", ".html", ".jsonl", ".toml")
        or caption_ext.lower() in IMAGE_EXTENSIONS
    ):
        raise ValueError(f"caption_ext {caption_ext!r} would overwrite the images, sidecars or gallery")
    return caption_ext


class Save(SaveNode):
    """Export kept images with captions, `.json` sidecars, an `index.html` gallery and a statistics page.

    Args:
        dir: target folder; relative to the workspace; default `output`.
        captions: write `<stem><caption_ext>` when an image has a caption (or tags, or a trigger).
        sidecars: write `<stem>.json` with the image's public properties.
        caption_ext: caption file extension (".txt" or ".caption").
        caption_prop: the property holding the caption (a string, or a list of strings); None for none.
        tags_prop: a property holding tags (e.g. "tags"); rendered and put before the caption.
        tag_spaces: underscores in tags become spaces (tags of 3 characters or fewer, like `^_^`, are kept).
        escape_parens: escape `(` `)` in tags as `\\(` `\\)` (for prompt UIs; kohya reads captions literally).
        first_tags: tags moved to the front when present (e.g. ["1girl", "1boy"]).
        trigger: trigger word put first in every caption, or replacing a literal `[trigger]`.
        multi_caption: several captions per image: "files" (an image copy per caption), "lines" (one
            caption per line, for trainers that pick a random line) or "first".
        stats: write `dataset_stats.html` (image sizes, buckets, tags, caption lengths) into the export.
    """

    description: ClassVar[str] = (
        "The training folder in the original's layout: images, captions, sidecars, gallery."
    )

    def __init__(
        self,
        dir: str | os.PathLike | None = None,
        captions: bool = True,
        sidecars: bool = True,
        caption_ext: str = ".txt",
        caption_prop: str | None = "caption",
        tags_prop: str | None = None,
        tag_spaces: bool = True,
        escape_parens: bool = False,
        first_tags: list[str] | tuple[str, ...] = (),
        trigger: str | None = None,
        multi_caption: str = "files",
        stats: bool = True,
    ) -> None:
        self.caption_ext = _check_caption_ext(caption_ext)
        self.sidecars = bool(sidecars)
        self._init_common(
            dir,
            captions,
            caption_prop,
            tags_prop,
            tag_spaces,
            escape_parens,
            first_tags,
            trigger,
            multi_caption,
            stats,
        )


class SaveKohya(SaveNode):
    """Export for kohya sd-scripts: `<repeats>_<class tokens>/` folders under `dir` (= `train_data_dir`).

    Args:
        dir: the parent folder (`train_data_dir`); relative to the workspace; default `output_kohya`.
        repeats: repeats per image (folder prefix); or `{concept: repeats}` with `concept_prop` (others: 1).
        class_tokens: the folder's class tokens (kohya's caption for images without a caption file);
            default: the trigger, else "img".
        concept_prop: a property whose value picks each image's concept folder (`<repeats>_<value>`).
        dataset_toml: also write `dataset.toml` (`[[datasets.subsets]]` per folder, absolute `image_dir`);
            with it, sd-scripts reads repeats from the TOML, not the folder names.
        resolution: the TOML's training resolution (an int or [width, height]).
        sidecars: also write `<stem>.json` property sidecars (kohya ignores them).
        Other args: as for `Save`.
    """

    layout: ClassVar[str] = "kohya"
    default_dir: ClassVar[str] = "output_kohya"
    description: ClassVar[str] = "kohya sd-scripts `train_data_dir`: `<repeats>_<class tokens>/` folders."

    def __init__(
        self,
        dir: str | os.PathLike | None = None,
        repeats: int | Mapping[str, int] = 1,
        class_tokens: str | None = None,
        concept_prop: str | None = None,
        dataset_toml: bool = False,
        resolution: int | list[int] | tuple[int, int] = 1024,
        captions: bool = True,
        sidecars: bool = False,
        caption_ext: str = ".txt",
        caption_prop: str | None = "caption",
        tags_prop: str | None = None,
        tag_spaces: bool = True,
        escape_parens: bool = False,
        first_tags: list[str] | tuple[str, ...] = (),
        trigger: str | None = None,
        multi_caption: str = "files",
        stats: bool = True,
    ) -> None:
        self._init_common(
            dir,
            captions,
            caption_prop,
            tags_prop,
            tag_spaces,
            escape_parens,
            first_tags,
            trigger,
            multi_caption,
            stats,
        )
        self.caption_ext, self.sidecars = _check_caption_ext(caption_ext), bool(sidecars)
        self.repeats = _check_repeats(repeats, concept_prop)
        if concept_prop is not None and not (isinstance(concept_prop, str) and _PROP.fullmatch(concept_prop)):
            raise ValueError(f"concept_prop must be a property name, got {concept_prop!r}")
        if class_tokens is not None and (not isinstance(class_tokens, str) or not class_tokens.strip()):
            raise ValueError(
                f"class_tokens must be a non-empty string such as 'ohwx dog', got {class_tokens!r}"
            )
        self.class_tokens, self.concept_prop = class_tokens, concept_prop
        self.dataset_toml = bool(dataset_toml)
        self.resolution = _check_resolution(resolution)


def _check_repeats(repeats: Any, concept_prop: str | None) -> int | dict[str, int]:
    def valid(n: Any) -> bool:
        return isinstance(n, int) and not isinstance(n, bool) and n >= 1

    if isinstance(repeats, Mapping):
        if concept_prop is None:
            raise ValueError(
                "repeats per concept ({concept: n}) need concept_prop to name the concept property"
            )
        if not all(isinstance(k, str) and valid(v) for k, v in repeats.items()):
            raise ValueError(f"repeats must map concept names to whole numbers ≥ 1, got {dict(repeats)!r}")
        return dict(repeats)
    if not valid(repeats):
        raise ValueError(f"repeats must be a whole number ≥ 1 (or {{concept: n}}), got {repeats!r}")
    return repeats


def _check_resolution(resolution: Any) -> int | list[int]:
    values = list(resolution) if isinstance(resolution, list | tuple) else [resolution]
    if len(values) not in (1, 2) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 64 for v in values
    ):
        raise ValueError(f"resolution must be a size ≥ 64 such as 1024 or [1024, 768], got {resolution!r}")
    return values[0] if len(values) == 1 else values


class SaveImageFolder(SaveNode):
    """Export as a Hugging Face `imagefolder` dataset: `<split>/` images plus `<split>/metadata.jsonl`.

    Each line holds `file_name` (relative to the metadata file), the caption column (`text`, what diffusers'
    scripts read by default) and the chosen properties. Load it with
    `load_dataset("imagefolder", data_dir=<dir>)`. With `multi_caption="lines"` the caption column holds a
    list of captions (diffusers' text-to-image script picks one at random).

    Args:
        dir: target folder; relative to the workspace; default `output_imagefolder`.
        properties: extra properties written as columns (e.g. ["width", "height", "tags"]).
        caption_column: the caption column's name (diffusers' `--caption_column`, default "text").
        split: the split folder name ("train").
        Other args: as for `Save`.
    """

    layout: ClassVar[str] = "imagefolder"
    default_dir: ClassVar[str] = "output_imagefolder"
    description: ClassVar[str] = "A Hugging Face imagefolder dataset: `train/` images and `metadata.jsonl`."

    def __init__(
        self,
        dir: str | os.PathLike | None = None,
        properties: list[str] | tuple[str, ...] = (),
        caption_column: str = "text",
        split: str = "train",
        captions: bool = True,
        caption_prop: str | None = "caption",
        tags_prop: str | None = None,
        tag_spaces: bool = True,
        escape_parens: bool = False,
        first_tags: list[str] | tuple[str, ...] = (),
        trigger: str | None = None,
        multi_caption: str = "files",
        stats: bool = True,
    ) -> None:
        self._init_common(
            dir,
            captions,
            caption_prop,
            tags_prop,
            tag_spaces,
            escape_parens,
            first_tags,
            trigger,
            multi_caption,
            stats,
        )
        if not (isinstance(caption_column, str) and _COLUMN.fullmatch(caption_column)):
            raise ValueError(f"caption_column must be a column name such as 'text', got {caption_column!r}")
        if isinstance(properties, str) or not all(
            isinstance(p, str) and _PROP.fullmatch(p) for p in properties
        ):
            raise ValueError(f"properties must be a list of property names, got {properties!r}")
        taken = {"file_name", "image", caption_column} & set(properties)
        if taken:
            raise ValueError(f"properties {sorted(taken)} clash with the file_name/image/caption columns")
        if not (isinstance(split, str) and re.fullmatch(r"[a-z][a-z0-9_]*", split)):
            raise ValueError(f"split must be a split name such as 'train', got {split!r}")
        self.properties, self.caption_column, self.split = list(properties), caption_column, split
