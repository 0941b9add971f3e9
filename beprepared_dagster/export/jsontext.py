"""Indented JSON for thousands of small objects (sidecars, gallery cards) at the C encoder's speed.

`json.dumps(..., indent=n)` always runs the pure-Python encoder (~50 µs for an image's properties); an export
writes one per image. A flat object (string keys; string, number, bool or null values) is laid out here
exactly as that call would, in one call of the C encoder whose item separator is the newline and the
indentation (scalars hold no separators of their own); anything else goes to `json.dumps` itself.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

_SCALARS = (str, int, float, bool, type(None))


@functools.cache
def _encoder(indent: int) -> Callable[[Any], str]:
    return json.JSONEncoder(ensure_ascii=False, separators=(",\n" + " " * indent, ": ")).encode


def pretty(obj: Any, indent: int) -> str:
    """The text of `json.dumps(obj, indent=indent, ensure_ascii=False)`."""
    if type(obj) is dict and obj and all(type(k) is str and type(v) in _SCALARS for k, v in obj.items()):
        text = _encoder(indent)(obj)  # '{"a": 1,\n  "b": 2}'
        return "{\n" + " " * indent + text[1:-1] + "\n}"
    return json.dumps(obj, indent=indent, ensure_ascii=False)
