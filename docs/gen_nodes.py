"""The node reference, generated from the node classes themselves: one page per node family.

Each node's section shows its signature and defaults, its docstring, a table of its parameters (documented in
the `Args:` section of the class's docstring or of a base class's, e.g. `CaptionNode` for the generation
parameters every local captioner shares), its category, the properties it reads (`reads`) and writes
(`writes`), what is left out of its cache key, and whether it needs a model, a GPU or a package extra.

Used three ways, so the reference cannot drift from the code:

* as an MkDocs hook (`hooks:` in mkdocs.yml): `mkdocs build` / `make docs` add the pages in memory;
* by the test suite (`beprepared_dagster_tests/docs/`), which also fails on `problems()`: a public node
  without a docstring, with an undocumented parameter or without `writes`;
* from the command line: `python docs/gen_nodes.py --out DIR` writes the pages, `--check` lists problems.

Conventions a node follows (see docs/contributing.md):

* `Args:` in Google style; one entry may name several parameters (`min_width, min_height: …`);
* `writes`: a tuple of the properties the node sets; `"{target_prop}"` names a parameter's value;
* `extra`: the pip extra the node needs (`"nsfw"` → `pip install 'beprepared-dagster[nsfw]'`);
* `gpu`: a short text overriding the GPU column (model nodes default to "recommended").
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

REFERENCE_DIR = "nodes"
NAV_TITLE = "Node reference"

# (slug, title, introduction). A node lands in the first family whose rule matches (see `family_of`).
FAMILIES: list[tuple[str, str, str]] = [
    ("io", "Load and save", "Where images come from and the trainer layouts they are exported in."),
    ("filters", "Filters", "Keep or reject each image by a rule; a rejected image records its reason."),
    (
        "human",
        "Human stages",
        "A person filters, tags or captions images in the labeling app; labels are keyed by image identity "
        "and `domain`, so every stage of a domain shares them.",
    ),
    (
        "captioning",
        "Captioning with local models",
        "Vision-language models run by the model runtime: downloads, devices, batching, per-batch writes.",
    ),
    (
        "captioning-api",
        "Captioning with APIs and LLMs",
        "Captions and caption rewrites from remote services that speak an API.",
    ),
    ("models", "Image models", "Other local models: embeddings, scores, tags, detections."),
    (
        "pixels",
        "Pixel transforms",
        "Nodes that derive new bytes (a new object id); the image's identity and partition stay the same.",
    ),
    (
        "dataset",
        "Order, sampling and dedupe",
        "Set-level nodes: they decide over every kept image at once and re-decide when anything above changes.",
    ),
    (
        "captions-tags",
        "Captions, tags and properties",
        "Set and edit captions, tag lists and other properties.",
    ),
    ("utils", "Utilities", "Merging branches, functions of images, logging, stopping a run."),
    ("other", "Other nodes", "Nodes not yet placed in a family."),
]

_MODULE_FAMILIES = {
    "load": "io",
    "save": "io",
    "filters": "filters",
    "human": "human",
    "setlevel": "dataset",
    "dedupe": "dataset",
    "convert_format": "pixels",
    "crop": "pixels",
    "scaling": "pixels",
    "captions": "captions-tags",
    "tags": "captions-tags",
    "concat": "utils",
    "utils": "utils",
}
_HIDDEN_MODULES = {
    "beprepared_dagster.nodes.base",
    "beprepared_dagster.nodes.model",
    "beprepared_dagster.workflow",
}
_ARG_LINE = re.compile(r"^(\*{0,2}[A-Za-z_]\w*(?:\s*,\s*\*{0,2}[A-Za-z_]\w*)*)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SECTION = re.compile(r"^(Args|Arguments|Parameters|Attributes|Returns|Raises|Yields|Examples?|Notes?):\s*$")


# --- reading the classes -------------------------------------------------------------------------------------


def node_classes() -> list[type]:
    """Every public node class: exported by the package (`from beprepared_dagster import *`) or by
    `beprepared_dagster.nodes`, minus the category base classes."""
    import beprepared_dagster
    import beprepared_dagster.nodes as nodes
    from beprepared_dagster.workflow import Node

    found: dict[str, type] = {}
    for module in (beprepared_dagster, nodes):
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name, None)
            if (
                isinstance(value, type)
                and issubclass(value, Node)
                and value.__module__ not in _HIDDEN_MODULES
                and not name.startswith("_")
            ):
                found[name] = value
    return [found[name] for name in sorted(found)]


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


# --- families ------------------------------------------------------------------------------------------------


def family_of(cls: type) -> str:
    from beprepared_dagster.nodes.base import (
        FilterNode,
        HumanNode,
        SetNode,
        SinkNode,
        SourceNode,
        TransformNode,
    )
    from beprepared_dagster.nodes.model import CaptionNode, ModelNode

    module = cls.__module__.rsplit(".", 1)[-1]
    if module in _MODULE_FAMILIES:
        return _MODULE_FAMILIES[module]
    rules: list[tuple[bool, str]] = [
        (issubclass(cls, SourceNode | SinkNode), "io"),
        (issubclass(cls, HumanNode), "human"),
        (issubclass(cls, CaptionNode), "captioning"),
        ("caption" in module or "llm" in module or cls.__name__.endswith("Caption"), "captioning-api"),
        (issubclass(cls, ModelNode), "models"),
        (issubclass(cls, SetNode), "dataset"),
        (issubclass(cls, TransformNode), "pixels"),
        (issubclass(cls, FilterNode), "filters"),
    ]
    return next((slug for matched, slug in rules if matched), "other")


# --- rendering -----------------------------------------------------------------------------------------------


@dataclass
class Page:
    path: str  # relative to the docs folder
    title: str
    content: str


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
    extra = getattr(cls, "extra", None)
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


def pages() -> list[Page]:
    """The reference: an index and one page per non-empty family, in FAMILIES order."""
    by_family: dict[str, list[type]] = {}
    for cls in node_classes():
        by_family.setdefault(family_of(cls), []).append(cls)
    result: list[Page] = []
    index = [
        f"# {NAV_TITLE}",
        "",
        "Generated from the node classes when the documentation is built: signatures, defaults and the "
        "parameter tables come from the code, so they cannot drift from it. Every node is importable with "
        "`from beprepared_dagster import *`.",
        "",
        "| family | nodes |",
        "|---|---|",
    ]
    for slug, title, intro in FAMILIES:
        classes = by_family.get(slug)
        if not classes:
            continue
        path = f"{REFERENCE_DIR}/{slug}.md"
        links = ", ".join(f"[`{c.__name__}`]({slug}.md#{c.__name__.lower()})" for c in classes)
        index.append(f"| [{title}]({slug}.md) | {links} |")
        content = [f"# {title}", "", intro, ""]
        content += [render_node(cls) for cls in classes]
        result.append(Page(path, title, "\n".join(content)))
    index += [
        "",
        "Per-image nodes are cached by their fingerprint (node type, node version and the parameters not listed "
        "as *not in the cache key*) and a digest of the properties they read: changing a parameter computes "
        "new results and keeps the old ones. See [Architecture](../architecture.md#the-cache-key).",
        "",
    ]
    result.insert(0, Page(f"{REFERENCE_DIR}/index.md", NAV_TITLE, "\n".join(index)))
    return result


# --- MkDocs hooks --------------------------------------------------------------------------------------------


def on_config(config: Any) -> Any:
    """Expand the nav entry `Node reference: nodes/index.md` into the generated pages."""
    entry_path = f"{REFERENCE_DIR}/index.md"
    generated = pages()
    nav = config.get("nav") or []
    for i, item in enumerate(nav):
        if isinstance(item, dict) and list(item.values()) == [entry_path]:
            nav[i] = {NAV_TITLE: [entry_path, *({p.title: p.path} for p in generated[1:])]}
    config["_beprepared_node_pages"] = generated
    return config


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for page in config.get("_beprepared_node_pages") or pages():
        files.append(File.generated(config, page.path, content=page.content))
    return files


# --- command line --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the pages under this folder")
    parser.add_argument("--check", action="store_true", help="list nodes the reference cannot fully describe")
    args = parser.parse_args(argv)
    if args.out:
        for page in pages():
            target = args.out / page.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(page.content + "\n", encoding="utf-8")
        print(f"wrote the node reference under {args.out / REFERENCE_DIR}")
    found = [p for cls in node_classes() for p in problems(cls)]
    if args.check:
        print("\n".join(found) or "every public node is documented")
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
