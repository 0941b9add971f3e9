"""Concat: merge branches. An image kept by several branches appears once per branch (as in the original)."""

from __future__ import annotations

from typing import Any, ClassVar

from beprepared_dagster.nodes.base import MergeNode


class Concat(MergeNode):
    """Merge the images of several branches: `Concat(a, b) >> Save` or `Concat() << a << b`.

    Args:
        nodes: the branches (nodes or node classes) to merge; more can be added with `<<`.
    """

    description: ClassVar[str] = "Images of all branches merged."

    def __init__(self, *nodes: Any) -> None:
        from beprepared_dagster.workflow import _as_node, connect

        for node in nodes:
            connect(_as_node(node), self)
        self.params.clear()
