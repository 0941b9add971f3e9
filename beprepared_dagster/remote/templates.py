"""Prompt templates over image properties (`"Tags: {tags}\\nCaption: {caption}"`), and the load-time check
that every property a template names is set by some stage above it.

A template names plain properties only (`{caption}`, not `{caption.upper}` or `{0}`); `{{` and `}}` are
literal braces. Values render as text: a list as `a, b, c`, a mapping as JSON, a missing property or None as
an empty string.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from typing import Any

from beprepared_dagster.errors import WorkflowError

# Properties set by nodes that do not declare `writes`; None: unknown (the check is skipped).
_UNDECLARED: dict[str, tuple[str, ...]] = {
    "Concat": (),
    "HumanFilter": ("passed_human_filter",),
    "HumanTag": ("{target_prop}",),
    "HumanCaption": ("{target_prop}",),
}
_BY_PARAMS = "the names given"  # Set's declaration: it writes its keyword names


class PromptTemplate:
    """A prompt template and the properties it reads."""

    def __init__(self, text: str, where: str = "prompt") -> None:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where} must be a non-empty string or a function of the image, got {text!r}")
        fields: list[str] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ValueError(
                f"{where} is not a valid template ({exc}); write literal braces as {{{{ }}}}"
            ) from None
        for _, name, spec, conversion in parsed:
            if name is None:
                continue
            if not name.isidentifier() or spec or conversion:
                shown = (
                    "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
                )
                raise ValueError(
                    f"{where}: {shown} is not a property name; use {{property}} (e.g. {{caption}}), and "
                    "{{ }} for literal braces"
                )
            if name not in fields:
                fields.append(name)
        self.text, self.fields = text, tuple(fields)

    def render(self, props: Mapping[str, Any]) -> str:
        return self.text.format(**{name: as_text(props.get(name)) for name in self.fields})


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(as_text(v) for v in value if v is not None)
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def check_fields(stage: Any, fields: tuple[str, ...], what: str) -> None:
    """Raise WorkflowError when a field is set by no stage above `stage` (when every stage above declares
    what it sets; otherwise the check is left to run time)."""
    known = upstream_properties(stage)
    if known is None:
        return
    missing = [f for f in fields if f not in known]
    if missing:
        raise WorkflowError(
            f"stage {stage.name!r} ({type(stage.node).__name__}): {what} names "
            f"{', '.join(repr(m) for m in missing)}, which no stage above sets; properties available: "
            f"{', '.join(sorted(known))}"
        )


def upstream_properties(stage: Any) -> set[str] | None:
    """Every property some stage above `stage` may set, or None when one of them does not say."""
    known: set[str] = set()
    seen: set[int] = set()
    todo = list(stage.inputs)
    while todo:
        above = todo.pop()
        if id(above) in seen:
            continue
        seen.add(id(above))
        props = node_writes(above.node)
        if props is None:
            return None
        known |= props
        todo.extend(above.inputs)
    return known


def node_writes(node: Any) -> set[str] | None:
    declared = getattr(type(node), "writes", None)
    if declared is None:
        declared = _UNDECLARED.get(type(node).__name__)
    if declared is None:
        return None
    out: set[str] = set()
    for entry in declared:
        if entry == _BY_PARAMS:
            out |= set(node.params)
            continue
        try:
            name = entry.format(**node.params)
        except (KeyError, IndexError, ValueError):
            return None
        if not name.isidentifier():  # a description ("whatever func returns"): unknown
            return None
        out.add(name)
    return out
