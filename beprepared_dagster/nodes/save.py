"""Save: write the training folder (see `export/folder.py` for the layout)."""

from __future__ import annotations

import os
import re
from typing import ClassVar

from beprepared_dagster.nodes.base import SinkNode
from beprepared_dagster.nodes.imaging import IMAGE_EXTENSIONS


class Save(SinkNode):
    """Export kept images with `.txt` captions, `.json` sidecars and an `index.html` gallery.

    Args:
        dir: target folder; relative to the workspace; default `output`.
        captions: write `<stem><caption_ext>` when an image has a caption.
        sidecars: write `<stem>.json` with the image's public properties.
        caption_ext: caption file extension (".txt" or ".caption").
    """

    description: ClassVar[str] = "The training folder written to {dir}."

    def __init__(
        self,
        dir: str | os.PathLike | None = None,
        captions: bool = True,
        sidecars: bool = True,
        caption_ext: str = ".txt",
    ) -> None:
        if not isinstance(caption_ext, str) or not re.fullmatch(r"\.[A-Za-z0-9_-]+", caption_ext):
            raise ValueError(f"caption_ext must look like '.txt' or '.caption', got {caption_ext!r}")
        if caption_ext.lower() in (".json", ".html") or caption_ext.lower() in IMAGE_EXTENSIONS:
            raise ValueError(f"caption_ext {caption_ext!r} would overwrite the images, sidecars or gallery")
        self.dir = dir
        self.captions, self.sidecars, self.caption_ext = bool(captions), bool(sidecars), caption_ext
