"""Check and normalise the label values the browser sends, per kind (formats in `nodes/human.py` and, for
comparisons, `nodes/rank.py`).

The browser is not trusted: a value must have exactly the documented shape, tags must belong to the stage's
tag set, and the stage's `version` is added by the server unless an undo restores an older value as it was.
"""

from __future__ import annotations

from typing import Any

from beprepared_dagster.nodes.base import HumanNode
from beprepared_dagster.store.objects import is_object_id

MAX_CAPTION = 20000
MAX_REQUEST_ID = 100


class InvalidWrite(ValueError):
    """A write from the browser that can never succeed (retrying it would not help)."""


def check_image_id(value: Any) -> str:
    if not is_object_id(value):
        raise InvalidWrite(f"not an image id: {str(value)[:80]!r}")
    return value


def check_request_id(value: Any) -> str:
    if not isinstance(value, str) or not 8 <= len(value) <= MAX_REQUEST_ID:
        raise InvalidWrite("every write needs a request id of 8-100 characters")
    return value


def normalise(node: HumanNode, value: Any) -> dict[str, Any] | None:
    """The journal value for `value` sent for `node`; None (an undo to "no label") stays None."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidWrite(f"a label must be an object or null, not {type(value).__name__}")
    if node.kind == "filter":
        return _filter(value)
    if node.kind == "tag":
        return _tag(node, value)
    if node.kind == "caption":
        return _caption(node, value)
    if node.kind == "rank":
        return _rank(value)
    raise InvalidWrite(f"unknown label kind {node.kind!r}")


def _filter(value: dict[str, Any]) -> dict[str, Any]:
    if set(value) != {"keep"} or not isinstance(value["keep"], bool):
        raise InvalidWrite('a filter label is {"keep": true|false}')
    return {"keep": value["keep"]}


def _version(node: HumanNode, value: dict[str, Any]) -> int:
    version = value.get("version", node.params["version"])
    if not isinstance(version, int) or isinstance(version, bool):
        raise InvalidWrite("version must be an integer")
    return version


def _tag(node: HumanNode, value: dict[str, Any]) -> dict[str, Any]:
    if set(value) - {"tags", "rejected", "version"}:
        raise InvalidWrite(
            f"unexpected fields in a tag label: {sorted(set(value) - {'tags', 'rejected', 'version'})}"
        )
    tags, rejected = value.get("tags", []), value.get("rejected", False)
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidWrite("tags must be a list of strings")
    if not isinstance(rejected, bool):
        raise InvalidWrite("rejected must be true or false")
    all_tags: list[str] = node.all_tags  # type: ignore[attr-defined]
    unknown = sorted(set(tags) - set(all_tags))
    if unknown:
        raise InvalidWrite(f"tag(s) {unknown} are not in this stage's tag set {all_tags}")
    chosen = set(tags)
    return {
        "tags": [t for t in all_tags if t in chosen],
        "rejected": rejected,
        "version": _version(node, value),
    }


def _caption(node: HumanNode, value: dict[str, Any]) -> dict[str, Any]:
    if set(value) - {"caption", "version"}:
        raise InvalidWrite(
            f"unexpected fields in a caption label: {sorted(set(value) - {'caption', 'version'})}"
        )
    caption = value.get("caption")
    if not isinstance(caption, str):
        raise InvalidWrite("caption must be a string")
    if len(caption) > MAX_CAPTION:
        raise InvalidWrite(f"caption is longer than {MAX_CAPTION} characters")
    return {"caption": caption, "version": _version(node, value)}


def _rank(value: dict[str, Any]) -> dict[str, Any]:
    """`{"vs": <other image id>, "result": 1 | 0 | 0.5}` (1: this image is better), or `{"undo": <request id>}`."""
    if set(value) == {"undo"}:
        return {"undo": check_request_id(value["undo"])}
    if set(value) != {"vs", "result"}:
        raise InvalidWrite('a comparison is {"vs": <image id>, "result": 1|0|0.5}, or {"undo": <request id>}')
    result = value["result"]
    if isinstance(result, bool) or result not in (0, 0.5, 1):
        raise InvalidWrite("result must be 1 (this one), 0 (the other one) or 0.5 (can't tell)")
    return {"vs": check_image_id(value["vs"]), "result": result}
