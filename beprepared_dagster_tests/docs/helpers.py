"""Paths of the repository's documentation and the generator module (docs/gen_nodes.py, not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"


def gen_nodes() -> ModuleType:
    """docs/gen_nodes.py as a module (the same file MkDocs loads as a hook)."""
    name = "beprepared_docs_gen_nodes"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, DOCS / "gen_nodes.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
