"""Caption and property setters: SetCaption, MapCaption, Set."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

from beprepared_dagster.nodes.base import Image, PropertyNode


class SetCaption(PropertyNode):
    """Set the same caption on every image (e.g. a trigger word).

    Args:
        caption: the caption text.
    """

    reads: ClassVar[tuple[str, ...]] = ()
    writes: ClassVar[tuple[str, ...]] = ("caption",)
    properties_only: ClassVar[bool] = True
    description: ClassVar[str] = "Images captioned {caption!r}."

    def __init__(self, caption: str) -> None:
        if not isinstance(caption, str):
            raise ValueError(f"caption must be a string, got {caption!r}")
        self.caption = caption

    def compute(self, image: Image) -> dict[str, Any]:
        return {"caption": self.caption}


class MapCaption(PropertyNode):
    """Replace each non-empty caption with `func(caption)`.

    Args:
        func: caption text → new caption text (its source is part of the cache key).
    """

    reads: ClassVar[tuple[str, ...]] = ("caption",)
    writes: ClassVar[tuple[str, ...]] = ("caption",)
    description: ClassVar[str] = "Images whose caption was rewritten by a function."

    def __init__(self, func: Callable[[str], str]) -> None:
        if not callable(func):
            raise ValueError(f"func must be callable, got {func!r}")
        self.func = func

    def compute(self, image: Image) -> dict[str, Any]:
        caption = image.get("caption")
        if not caption:
            return {}
        result = self.func(caption)
        if not isinstance(result, str):
            raise TypeError(f"MapCaption's function returned {type(result).__name__}, not a string")
        return {"caption": result}


class Set(PropertyNode):
    """Set properties on every image: `Set(source="web", score=lambda image: image.width / 1000)`.

    Constant values must be JSON values; a callable is called with the image.

    Args:
        props: property name = a JSON value, or a function of the image returning one.
    """

    description: ClassVar[str] = "Images with properties set: {names}."
    writes: ClassVar[tuple[str, ...]] = ("the names given",)

    def __init__(self, **props: Any) -> None:
        if not props:
            raise ValueError("give at least one property, e.g. Set(source='web')")
        for name, value in props.items():
            if not callable(value):
                try:
                    json.dumps(value, allow_nan=False)
                except (TypeError, ValueError):
                    raise ValueError(f"value of {name!r} is not a JSON value: {value!r}") from None
        self.props = props
        self.params.clear()
        self.params.update(props)

    @property
    def reads(self) -> tuple[str, ...] | None:  # type: ignore[override]
        return None if any(callable(v) for v in self.props.values()) else ()

    def compute(self, image: Image) -> dict[str, Any]:
        result = {}
        for name, value in self.props.items():
            result[name] = value(image) if callable(value) else value
            try:
                json.dumps(result[name], allow_nan=False)
            except (TypeError, ValueError):
                raise TypeError(f"Set: {name!r} computed a non-JSON value {result[name]!r}") from None
        return result
