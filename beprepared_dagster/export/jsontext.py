"""Indented JSON for thousands of small objects (sidecars, gallery cards) at the C encoder's speed.

`json.dumps(..., indent=n)` always runs the pure-Python encoder (~50 µs for an image's properties); an export
writes one per image, twice. A flat object (string keys; string, number, bool or null values) is laid out
here exactly as that call would, each key and value encoded by the C encoder; anything else goes to
`json.dumps` itself.
"""

from __future__ import annotations

import json
from typing import Any

_ENCODE = json.JSONEncoder(ensure_ascii=False).encode
_SCALARS = (str, int, float, bool, type(None))


def pretty(obj: Any, indent: int) -> str:
    """The text of `json.dumps(obj, indent=indent, ensure_ascii=False)`."""
    if type(obj) is dict and obj and all(type(k) is str and type(v) in _SCALARS for k, v in obj.items()):
        pad = " " * indent
        return "{\n" + ",\n".join(f"{pad}{_ENCODE(k)}: {_ENCODE(v)}" for k, v in obj.items()) + "\n}"
    return json.dumps(obj, indent=indent, ensure_ascii=False)
