"""Journal entries of kind `rank` → the comparisons in force.

A comparison is one entry keyed by its left image: `{"vs": <right image id>, "result": 1 | 0 | 0.5}` (1: the
left one is better, 0: the right one, 0.5: "can't tell"). Undo is an entry `{"undo": <request id>}` that
cancels the comparison sent with that request id. Nothing is rewritten, so re-fitting never loses work.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

RESULTS = (0, 0.5, 1)


@dataclass(frozen=True)
class Comparison:
    left: str
    right: str
    result: float  # 1: left better, 0: right better, 0.5: a tie
    entry: int = 0  # journal id (0 for synthetic comparisons)


def in_force(entries: Iterable[Any]) -> list[Comparison]:
    """Comparisons not undone, oldest first. `entries`: journal labels with `id`, `image_id`, `value` and
    `request_id` (undo entries refer to the request id of the comparison they cancel)."""
    kept: dict[str, Comparison] = {}
    anonymous: list[Comparison] = []
    for entry in entries:
        value = entry.value or {}
        if "undo" in value:
            kept.pop(str(value["undo"]), None)
            continue
        result = value.get("result")
        right = value.get("vs")
        if result not in RESULTS or not isinstance(right, str) or right == entry.image_id:
            continue
        comparison = Comparison(entry.image_id, right, float(result), entry.id)
        rid = getattr(entry, "request_id", None)
        if rid:
            kept[rid] = comparison
        else:
            anonymous.append(comparison)
    return sorted([*kept.values(), *anonymous], key=lambda c: c.entry)
