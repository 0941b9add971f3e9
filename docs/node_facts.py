"""What the node reference says about one node class: its docstring split into prose and `Args:`, its
parameters (documented on the class or a base class), the problems the completeness test fails on, and the
rendered Markdown section. Used by gen_nodes.py (the MkDocs hook) and the test suite."""

from __future__ import annotations

import inspect
import re
from enum import Enum
from typing import Any

_ARG_LINE = re.compile(r"^(\*{0,2}[A-Za-z_]\w*(?:\s*,\s*\*{0,2}[A-Za-z_]\w*)*)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SECTION = re.compile(r"^(Args|Arguments|Parameters|Attributes|Returns|Raises|Yields|Examples?|Notes?):\s*$")


def split_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """(the docstring without its Args section, {parameter: description}) for a Google-style docstring."""
    text = inspect.cleandoc(doc or "")
    body: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: list[str] = []
    indent: int | None = None
    for line in text.splitlines():
        header = _SECTION.match(line)
        if header:
            section, indent = header.group(1), None
            if section not in ("Args", "Arguments", "Parameters"):
                body.append(line)
            continue
        if section in ("Args", "Arguments", "Parameters"):
            if not line.strip():
                continue
            this = len(line) - len(line.lstrip())
            if this == 0:  # back to prose
                section = None
                body.append(line)
                continue
            if indent is None:
                indent = this
            entry = _ARG_LINE.match(line.strip()) if this == indent else None
            if entry:
                current = [entry.group(2).strip()]
                for name in entry.group(1).split(","):
                    args[name.strip().lstrip("*")] = current  # type: ignore[assignment]
            elif current:
                current.append(line.strip())
            continue
        body.append(line)
    joined = {name: " ".join(parts).strip() for name, parts in args.items()}  # type: ignore[arg-type]
    return "\n".join(body).strip(), joined


def parameters(cls: type) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]


def documented_params(cls: type) -> dict[str, str]:
    """Parameter descriptions from the class's docstring, then its bases' (nearest first)."""
    merged: dict[str, str] = {}
    for klass in cls.__mro__:
        if "__doc__" in vars(klass) and klass.__doc__:
            for name, text in split_docstring(klass.__doc__)[1].items():
                merged.setdefault(name, text)
    return merged


def _own_docstring(cls: type) -> str | None:
    return cls.__doc__ if "__doc__" in vars(cls) else None


def problems(cls: type) -> list[str]:
    """What the reference cannot say about `cls`; the completeness test fails on any."""
    found = []
    if not (_own_docstring(cls) or "").strip():
        found.append(f"{cls.__name__} has no docstring")
    documented = documented_params(cls)
    for param in parameters(cls):
        if param.name in ("args", "kwargs") and param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue  # inherited `*args, **kwargs` of a node without its own __init__
        if not documented.get(param.name):
            found.append(f"{cls.__name__}: parameter {param.name!r} is not documented under Args:")
    if _is_per_image(cls) and getattr(cls, "writes", None) is None:
        found.append(f"{cls.__name__} does not declare `writes` (the properties it sets; () for none)")
    return found


def _is_per_image(cls: type) -> bool:
    """Nodes whose results are properties of each image (everything but merges and exports)."""
    from beprepared_dagster.nodes.base import HumanNode, ImageNode, SetNode, SourceNode

    return issubclass(cls, ImageNode | SetNode | HumanNode | SourceNode)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _repr(value: Any) -> str:
    return f"{type(value).__name__}.{value.name}" if isinstance(value, Enum) else repr(value)


def _default(param: inspect.Parameter) -> str:
    if param.kind == param.VAR_POSITIONAL:
        return "any number"
    if param.kind == param.VAR_KEYWORD:
        return "any names"
    if param.default is param.empty:
        return "**required**"
    return f"`{_repr(param.default)}`"


def signature_text(cls: type) -> str:
    parts = []
    for param in parameters(cls):
        if param.kind == param.VAR_POSITIONAL:
            parts.append(f"*{param.name}")
        elif param.kind == param.VAR_KEYWORD:
            parts.append(f"**{param.name}")
        elif param.default is param.empty:
            parts.append(param.name)
        else:
            parts.append(f"{param.name}={_repr(param.default)}")
    one_line = f"{cls.__name__}({', '.join(parts)})"
    if len(one_line) <= 100:
        return one_line
    return f"{cls.__name__}(\n" + "".join(f"    {p},\n" for p in parts) + ")"


def _category(cls: type) -> str:
    from beprepared_dagster.nodes.base import (
        FilterNode,
        HumanNode,
        MergeNode,
        PropertyNode,
        SetNode,
        SinkNode,
        SourceNode,
        TransformNode,
    )
    from beprepared_dagster.nodes.model import CaptionNode, ModelNode

    kinds = [
        (SourceNode, "source: reads images from outside the workspace"),
        (SinkNode, "export: an unpartitioned asset that writes the kept images"),
        (MergeNode, "merge: joins branches"),
        (HumanNode, f"human stage: label kind `{getattr(cls, 'kind', '')}`, answered in the labeling app"),
        (SetNode, "set-level: decides over every kept image at once"),
        (CaptionNode, "local captioner (`CaptionNode`), run by the model runtime"),
        (ModelNode, "local model (`ModelNode`), run by the model runtime"),
        (TransformNode, "transform: derives new bytes (new object id, same partition)"),
        (FilterNode, "filter: keeps an image or rejects it with a reason"),
        (PropertyNode, "property: sets properties on each image"),
    ]
    return next((text for base, text in kinds if issubclass(cls, base)), "per-image node")


def _names(values: Any) -> str:
    if values is None:
        return "every property"
    if not values:
        return "—"
    return ", ".join(f"`{v}`" for v in values)


def _reads(cls: type) -> str:
    value = inspect.getattr_static(cls, "reads", None)
    if isinstance(value, property):
        return "depends on the parameters (see above)"
    return _names(value)


def _writes(cls: type, defaults: dict[str, Any]) -> str:
    writes = getattr(cls, "writes", None)
    if writes is None:
        return "not declared"
    shown = []
    for name in writes:
        placeholder = re.fullmatch(r"\{(\w+)\}", name)
        if placeholder:
            param = placeholder.group(1)
            shown.append(f"`{defaults.get(param, param)}` (the `{param}` parameter)")
        elif name.isidentifier():
            shown.append(f"`{name}`")
        else:
            shown.append(name)  # prose: "the names given"
    return ", ".join(shown) if shown else "—"


def _extra_in_docstring(cls: type) -> str | None:
    """The extra a docstring tells users to install (`pip install 'beprepared-dagster[nsfw]'`)."""
    found = re.search(r"beprepared-dagster\[([\w-]+)\]", _own_docstring(cls) or "")
    return found.group(1) if found else None


def _model_rows(cls: type) -> list[tuple[str, str]]:
    from beprepared_dagster.nodes.model import ModelNode

    rows = []
    default_model = getattr(cls, "default_model", "")
    if issubclass(cls, ModelNode):
        model = (
            f"`{default_model}` by default (`model=` for another hub id or a folder)"
            if default_model
            else ("`model=`: a hub id or a local folder")
        )
        rows.append(("model", f"{model}; family: {cls.family}"))
        if cls.trust_remote_code:
            rows.append(
                ("remote code", "the checkpoint's own Python code runs (`trust_remote_code`, logged)")
            )
        rows.append(("GPU", getattr(cls, "gpu", None) or "recommended; runs on the CPU too, slowly"))
        rows.append(("defaults", _generation_defaults(cls)))
    else:
        if default_model:
            rows.append(("model", f"`{default_model}` by default"))
        rows.append(("GPU", getattr(cls, "gpu", None) or "no"))
    extra = getattr(cls, "extra", None) or _extra_in_docstring(cls)
    rows.append(("extra", f"`pip install 'beprepared-dagster[{extra}]'`" if extra else "none"))
    return rows


def _generation_defaults(cls: type) -> str:
    """The class-level defaults a `None` parameter stands for (batch size, sampling)."""
    names = {
        "default_batch_size": "batch_size",
        "default_max_new_tokens": "max_new_tokens",
        "default_temperature": "temperature",
        "default_top_p": "top_p",
    }
    shown = [f"`{param}={getattr(cls, attr)!r}`" for attr, param in names.items() if hasattr(cls, attr)]
    return "used for a parameter left at None: " + ", ".join(shown)


def render_node(cls: type) -> str:
    body, _ = split_docstring(_own_docstring(cls))
    params = parameters(cls)
    docs = documented_params(cls)
    defaults = {p.name: p.default for p in params if p.default is not p.empty}
    excluded = [n for n in getattr(cls, "fingerprint_exclude", ()) if n in defaults or n in docs]
    facts: list[tuple[str, str]] = [("category", _category(cls))]
    if _is_per_image(cls):
        facts += [("reads", _reads(cls)), ("writes", _writes(cls, defaults))]
    facts.append(("node version", f"{getattr(cls, 'version', 1)} (part of the cache key)"))
    if excluded:
        facts.append(("not in the cache key", ", ".join(f"`{n}`" for n in excluded)))
    facts += _model_rows(cls)
    lines = [
        f"## {cls.__name__}",
        "",
        f"```python\n{signature_text(cls)}\n```",
        "",
        body or "*No docstring.*",
        "",
    ]
    lines += ["| | |", "|---|---|", *(f"| {k} | {_cell(v)} |" for k, v in facts), ""]
    if params:
        lines += ["| parameter | default | description |", "|---|---|---|"]
        for param in params:
            text = docs.get(param.name) or "*undocumented*"
            lines.append(f"| `{param.name}` | {_cell(_default(param))} | {_cell(text)} |")
        lines.append("")
    return "\n".join(lines)
