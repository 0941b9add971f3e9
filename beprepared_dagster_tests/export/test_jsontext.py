"""The fast indented JSON of sidecars and gallery cards is byte for byte what `json.dumps` writes."""

from __future__ import annotations

import json

import pytest

from beprepared_dagster.export.jsontext import pretty

CASES = [
    {"original_path": "/photos/IMG_0042.jpg", "width": 4032, "height": 3024, "format": "JPEG"},
    {"caption": 'a "quoted" caption\nwith a newline, a tab\t and a backslash \\', "score": 0.1 + 0.2},
    {"é": "naïve café — 東京 🌸", "control": "\x00\x1f\x7f", "none": None, "yes": True, "no": False},
    {"big": 10**30, "neg": -1.5e-300, "inf": float("inf"), "nan": float("nan"), "zero": -0.0},
    {"a, b": 'c,\n  "d": 1', "e": ": "},  # separators inside keys and strings stay escaped text
    {"tags": ["a", "b"], "nested": {"x": 1}},  # not flat: json.dumps itself
    {},
    [1, 2, {"a": 1}],
    "just a string",
]


@pytest.mark.parametrize("indent", [1, 2])
@pytest.mark.parametrize("value", CASES, ids=range(len(CASES)))
def test_pretty_is_json_dumps(value: object, indent: int) -> None:
    assert pretty(value, indent) == json.dumps(value, indent=indent, ensure_ascii=False)
