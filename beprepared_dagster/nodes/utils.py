"""Utility nodes: Map, Apply, Info, Passthrough, Sleep, Fail.

Like every per-image node these are cached by their inputs: a function given to Map or Apply runs once per
distinct image state, and Info logs the images it has not logged in that state before. Functions' source
text is part of the cache key, so editing one reruns it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from beprepared_dagster.errors import StageFailed
from beprepared_dagster.nodes.base import Image, ImageNode, NodeContext, Outcome, PropertyNode

_MAX_CHARS = 2000  # per property: a long caption stays readable, a page of JSON does not
_ELIDE_AFTER = 50  # list items shown by Info before eliding the middle (the original's 25 + … + 25)


def _callable(name: str, value: Any) -> None:
    if not callable(value):
        raise ValueError(f"{name} must be callable, got {value!r}")


class Map(PropertyNode):
    """Replace each image with `func(image)`, e.g. `Map(lambda image: image.with_props(score=1))`.

    The function gets a read-only image and returns an image (or a dict of properties); the properties that
    differ are set. Properties cannot be removed: set them to None.

    Args:
        func: image → image.
    """

    description: ClassVar[str] = "Images transformed by a function."
    writes: ClassVar[tuple[str, ...]] = ("whatever func returns",)

    def __init__(self, func: Callable[[Image], Mapping[str, Any]]) -> None:
        _callable("func", func)
        self.func = func

    def compute(self, image: Image) -> dict[str, Any]:
        result = self.func(image)
        if result is None:
            raise TypeError(
                "Map's function returned None; return the image, e.g. "
                "`lambda image: image.with_props(caption=...)` (use Apply for side effects only)"
            )
        if not isinstance(result, Mapping):
            raise TypeError(f"Map's function returned {type(result).__name__}, not an image or a dict")
        changes = {k: v for k, v in result.items() if k not in image or image[k] != v}
        for name, value in changes.items():
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError):
                raise TypeError(f"Map: property {name!r} is not a JSON value: {value!r}") from None
        return changes


class Apply(PropertyNode):
    """Call `func(image)` for its side effects; images pass through unchanged.

    Cached like every node: the function runs once per distinct image, not on every run.

    Args:
        func: image → anything (the result is ignored).
    """

    description: ClassVar[str] = "Images passed to a function for its side effects."
    writes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, func: Callable[[Image], Any]) -> None:
        _callable("func", func)
        self.func = func

    def compute(self, image: Image) -> dict[str, Any]:
        self.func(image)
        return {}


class Info(ImageNode):
    """Log every property of each image (to the run log, shown in Dagster and in the terminal).

    Args:
        include_hidden_properties: also show properties whose name starts with "_".
    """

    description: ClassVar[str] = "Images whose properties were logged."
    writes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, include_hidden_properties: bool = False) -> None:
        if not isinstance(include_hidden_properties, bool):
            raise ValueError(
                f"include_hidden_properties must be True or False, got {include_hidden_properties!r}"
            )

    def process(self, images: list[Image], ctx: NodeContext) -> list[Outcome]:
        for image in images:
            ctx.log.info(self.describe(image))
        return [Outcome.keep() for _ in images]

    def describe(self, image: Image) -> str:
        hidden = self.params["include_hidden_properties"]
        lines = [f"{image.get('original_path') or image.get('objectid')}:"]
        for name in sorted(image):
            if hidden or not name.startswith("_"):
                text = _show(image[name])
                text = text if len(text) <= _MAX_CHARS else text[:_MAX_CHARS] + " …"
                lines.append(f"  {name}: {text}")
        return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, list) and len(value) > _ELIDE_AFTER:
        half = _ELIDE_AFTER // 2
        middle = f"… {len(value) - 2 * half} more …"
        return f"[{', '.join(map(repr, value[:half]))}, {middle}, {', '.join(map(repr, value[-half:]))}]"
    return repr(value)


class Passthrough(ImageNode):
    """Pass every image on unchanged (a placeholder while building a workflow)."""

    reads: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = "Images passed on unchanged."
    writes: ClassVar[tuple[str, ...]] = ()

    def process(self, images: list[Image], ctx: NodeContext) -> list[Outcome]:
        return [Outcome.keep() for _ in images]


class Sleep(ImageNode):
    """Wait `seconds` once for each run that brings this stage images it has not seen (for demos and tests).

    Args:
        seconds: how long to wait.
    """

    batch_size: ClassVar[int] = 1_000_000  # one batch, so one wait, per run
    description: ClassVar[str] = "Images passed on after a {seconds} s pause."
    writes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= 86_400:
            raise ValueError(f"seconds must be a number from 0 to 86400, got {seconds!r}")

    def process(self, images: list[Image], ctx: NodeContext) -> list[Outcome]:
        if images:
            time.sleep(self.params["seconds"])
        return [Outcome.keep() for _ in images]


class Fail(ImageNode):
    """Fail the run with `message` when the workflow reaches this stage (e.g. to stop before a costly one).

    Args:
        message: the error shown for the failed run.
    """

    description: ClassVar[str] = "Fails the run: {message}"
    writes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, message: str = "error") -> None:
        if not isinstance(message, str):
            raise ValueError(f"message must be a string, got {message!r}")

    def process(self, images: list[Image], ctx: NodeContext) -> list[Outcome]:
        raise StageFailed(f"Fail: {self.params['message']}")
