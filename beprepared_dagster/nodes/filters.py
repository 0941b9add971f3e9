"""Filters: FilterBySize, FilterByAspectRatio, Filter(predicate)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from beprepared_dagster.nodes.base import FilterNode, Image


def _positive(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{name} must be a positive number or None, got {value!r}")


class FilterBySize(FilterNode):
    """Keep images within size bounds, in pixels as displayed (EXIF orientation applied).

    Args:
        min_width, min_height, max_width, max_height: bounds on each side.
        min_edge: bound on the shorter side.
        max_edge: bound on the longer side.
    """

    reads: ClassVar[tuple[str, ...]] = ("width", "height")
    properties_only: ClassVar[bool] = True
    writes: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = "Images whose size is within the bounds."

    def __init__(
        self,
        min_width: int | None = None,
        min_height: int | None = None,
        min_edge: int | None = None,
        max_width: int | None = None,
        max_height: int | None = None,
        max_edge: int | None = None,
    ) -> None:
        for name, value in self.params.items():
            _positive(name, value)
        if all(v is None for v in self.params.values()):
            raise ValueError("give at least one bound (min_edge, max_edge, min_width, …)")
        for what in ("width", "height", "edge"):
            low, high = self.params[f"min_{what}"], self.params[f"max_{what}"]
            if low is not None and high is not None and low > high:
                raise ValueError(f"min_{what} {low} is larger than max_{what} {high}")
        self.bounds = dict(self.params)

    def reject_reason(self, image: Image) -> str | None:
        w, h = image.width, image.height
        measures = {"width": w, "height": h, "edge": (min(w, h), max(w, h))}
        for name, limit in self.bounds.items():
            if limit is None:
                continue
            kind, what = name.split("_")
            value = measures[what] if what != "edge" else measures["edge"][0 if kind == "min" else 1]
            if (kind == "min" and value < limit) or (kind == "max" and value > limit):
                word = "too small" if kind == "min" else "too large"
                return f"{word}: {what} {value} {'<' if kind == 'min' else '>'} {name} {limit}"
        return None


class FilterByAspectRatio(FilterNode):
    """Keep images with `min_aspect <= width / height <= max_aspect`.

    Args:
        min_aspect: the smallest width / height kept (None: no lower bound).
        max_aspect: the largest width / height kept (None: no upper bound).
    """

    reads: ClassVar[tuple[str, ...]] = ("width", "height")
    properties_only: ClassVar[bool] = True
    writes: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = "Images whose aspect ratio is within the bounds."

    def __init__(self, min_aspect: float | None = None, max_aspect: float | None = None) -> None:
        _positive("min_aspect", min_aspect)
        _positive("max_aspect", max_aspect)
        if min_aspect is None and max_aspect is None:
            raise ValueError("give min_aspect, max_aspect or both")
        if min_aspect is not None and max_aspect is not None and min_aspect > max_aspect:
            raise ValueError(f"min_aspect {min_aspect} is larger than max_aspect {max_aspect}")
        self.min_aspect, self.max_aspect = min_aspect, max_aspect

    def reject_reason(self, image: Image) -> str | None:
        aspect = image.width / image.height
        if self.min_aspect is not None and aspect < self.min_aspect:
            return f"aspect {aspect:.3f} < min_aspect {self.min_aspect}"
        if self.max_aspect is not None and aspect > self.max_aspect:
            return f"aspect {aspect:.3f} > max_aspect {self.max_aspect}"
        return None


class Filter(FilterNode):
    """Keep images for which `predicate(image)` is truthy. The predicate sees plain values
    (`image.width`, `image.get("caption")`), and its source text is part of the cache key.

    Args:
        predicate: image → truthy to keep, falsy to reject.
    """

    description: ClassVar[str] = "Images for which the predicate holds."
    writes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, predicate: Callable[[Image], Any]) -> None:
        if not callable(predicate):
            raise ValueError(f"predicate must be callable, got {predicate!r}")
        self.predicate = predicate

    def reject_reason(self, image: Image) -> str | None:
        return None if self.predicate(image) else "predicate was false"
