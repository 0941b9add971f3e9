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

This file groups nodes into families and assembles the pages; `node_facts.py` reads and renders one node.

Conventions a node follows (see docs/contributing.md):

* `Args:` in Google style; one entry may name several parameters (`min_width, min_height: …`);
* `writes`: a tuple of the properties the node sets; `"{target_prop}"` names a parameter's value;
* `extra`: the pip extra the node needs (`"nsfw"` → `pip install 'beprepared-dagster[nsfw]'`);
* `gpu`: a short text overriding the GPU column (model nodes default to "recommended").
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# node_facts.py sits beside this file; docs/ is not a package, and MkDocs loads this hook by its path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from node_facts import problems, render_node  # noqa: E402

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
    "rank": "human",
    "api_caption": "captioning-api",
    "flip": "pixels",
    "pixel_model": "pixels",
    "anonymize": "pixels",
    "watermark": "pixels",
    "upscale_model": "pixels",
    "embeddings": "models",
    "aesthetic": "models",
    "nudenet": "models",
    "wd_tagger": "models",
}
_HIDDEN_MODULES = {
    "beprepared_dagster.nodes.base",
    "beprepared_dagster.nodes.model",
    "beprepared_dagster.workflow",
}

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
        (any(k.__name__ == "PixelModelNode" for k in cls.__mro__), "pixels"),  # models that change pixels
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
