"""The package's node classes load on first use: a workflow that names a few nodes does not import the
other ~70 node modules at start (a headless re-run's start-up is most of its time), while `import *`,
attribute access and `dir()` still see every node."""

from __future__ import annotations

import json
import subprocess
import sys

import beprepared_dagster
import beprepared_dagster.nodes as nodes


def _modules_after(code: str) -> set[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_naming_a_few_nodes_imports_only_their_modules():
    loaded = _modules_after("from beprepared_dagster import Load, SetCaption, Save, Workspace")
    node_modules = {m for m in loaded if m.startswith("beprepared_dagster.nodes.")}
    assert {"beprepared_dagster.nodes.load", "beprepared_dagster.nodes.captions"} <= node_modules
    for heavy in ("aesthetic", "florence2", "wd_tagger", "api_caption", "vlm_caption", "dedupe", "nudenet"):
        assert f"beprepared_dagster.nodes.{heavy}" not in loaded


def test_star_import_and_attributes_still_give_every_node():
    namespace: dict = {}
    exec("from beprepared_dagster import *", namespace)
    assert set(beprepared_dagster.__all__) <= set(namespace)
    assert namespace["Florence2Caption"] is nodes.Florence2Caption
    assert set(nodes.__all__) <= set(dir(nodes)) and set(beprepared_dagster.__all__) <= set(
        dir(beprepared_dagster)
    )
    assert beprepared_dagster.__version__


def test_an_unknown_name_is_an_attribute_error_naming_it():
    import pytest

    with pytest.raises(AttributeError, match="NoSuchNode"):
        beprepared_dagster.NoSuchNode  # noqa: B018
    with pytest.raises(ImportError):
        exec("from beprepared_dagster.nodes import NoSuchNode", {})
