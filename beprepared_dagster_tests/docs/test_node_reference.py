"""The generated node reference: every public node documented (docstring, each parameter, `writes`), the
checker catching what is missing, a node's page following its signature, and the contributing guide's
example node working as printed.

Not covered here: the rendered HTML (test_docs_build.py builds the site)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import ClassVar

from beprepared_dagster.nodes.base import FilterNode, Image, NodeContext, PropertyNode
from beprepared_dagster.store.objects import ObjectStore
from beprepared_dagster_tests.docs.helpers import DOCS, gen_nodes

DEMO = Path(__file__).resolve().parents[2] / "beprepared_dagster" / "demo" / "images"


def test_every_public_node_is_documented():
    gen = gen_nodes()
    found = [problem for cls in gen.node_classes() for problem in gen.problems(cls)]
    assert not found, "the node reference cannot describe these nodes:\n" + "\n".join(found)


def test_the_reference_covers_the_dsl():
    names = {cls.__name__ for cls in gen_nodes().node_classes()}
    assert {"Load", "Save", "FilterBySize", "HumanFilter", "HumanTag", "JoyCaptionBetaOne", "Take"} <= names
    assert not names & {"FilterNode", "ImageNode", "SetNode", "HumanNode", "CaptionNode", "ModelNode"}


def test_every_node_is_on_exactly_one_page_and_the_index_links_it():
    gen = gen_nodes()
    pages = gen.pages()
    index = pages[0]
    assert index.path == "nodes/index.md"
    for cls in gen.node_classes():
        holders = [p for p in pages[1:] if re.search(rf"^## {cls.__name__}$", p.content, re.M)]
        assert len(holders) == 1, f"{cls.__name__} is on {len(holders)} pages"
        slug = Path(holders[0].path).stem
        assert f"[`{cls.__name__}`]({slug}.md#{cls.__name__.lower()})" in index.content


class _Undocumented(FilterNode):
    def __init__(self, limit: int = 3) -> None:
        pass


class _HalfDocumented(PropertyNode):
    """Sets `score`.

    Args:
        scale: how much.
    """

    writes: ClassVar[tuple[str, ...]] = ("score",)

    def __init__(self, scale: float = 1.0, offset: float = 0.0) -> None:
        pass


def test_the_checker_fails_a_node_without_docstring_or_writes():
    problems = gen_nodes().problems(_Undocumented)
    assert "_Undocumented has no docstring" in problems
    assert "_Undocumented: parameter 'limit' is not documented under Args:" in problems
    assert any("does not declare `writes`" in p for p in problems)


def test_the_checker_fails_a_parameter_added_without_its_description():
    assert gen_nodes().problems(_HalfDocumented) == [
        "_HalfDocumented: parameter 'offset' is not documented under Args:"
    ]


def test_a_nodes_section_follows_its_signature():
    text = gen_nodes().render_node(_HalfDocumented)
    assert "_HalfDocumented(scale=1.0, offset=0.0)" in text
    assert "| `scale` | `1.0` | how much. |" in text
    assert "| `offset` | `0.0` | *undocumented* |" in text
    assert "| writes | `score` |" in text


def test_parameters_documented_on_a_base_class_and_grouped_entries_count():
    gen = gen_nodes()
    from beprepared_dagster import FilterBySize, Florence2Caption

    florence = gen.render_node(Florence2Caption)
    assert "| `devices` | `None` | devices to run on" in florence  # from ModelNode's Args:
    assert "| `seed` | `0` | the sampling seed" in florence  # from CaptionNode's Args:
    assert "| GPU | recommended" in florence
    size = gen.render_node(FilterBySize)
    assert "| `max_height` | `None` | bounds on each side. |" in size  # `min_width, …, max_height:` entry


def test_writes_name_the_parameter_that_holds_the_property():
    from beprepared_dagster import HumanTag

    assert "| writes | `tags` (the `target_prop` parameter) |" in gen_nodes().render_node(HumanTag)


def _contributing_example() -> str:
    text = (DOCS / "contributing.md").read_text(encoding="utf-8")
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def test_the_contributing_guides_example_node_works(tmp_path):
    namespace: dict = {}
    exec(compile(_contributing_example(), "contributing.md", "exec"), namespace)  # noqa: S102
    grayscale = namespace["Grayscale"](format="JPEG")
    assert gen_nodes().problems(type(grayscale)) == []
    objects = ObjectStore(tmp_path / "objects")
    source = objects.put_bytes((DEMO / "calla.png").read_bytes())
    ctx = NodeContext(objects=objects, log=logging.getLogger("test"))
    props = grayscale.transform(Image({"objectid": source, "format": "PNG"}), ctx)
    assert set(props) <= set(type(grayscale).writes)
    from PIL import Image as PILImage

    with PILImage.open(objects.path(props["objectid"])) as out:
        assert out.format == "JPEG" and out.mode == "L"


def test_generator_writes_pages_from_the_command_line(tmp_path):
    gen = gen_nodes()
    assert gen.main(["--out", str(tmp_path)]) == 0
    assert (tmp_path / "nodes" / "index.md").is_file()
    assert "## ConvertFormat" in (tmp_path / "nodes" / "pixels.md").read_text()
