"""The DSL: `>>`, `<<`, Concat, bare classes, branching, validation messages, fingerprints.

Does not run anything (see orchestration/ for runs)."""

from __future__ import annotations

from typing import ClassVar

import pytest

from beprepared_dagster import Concat, ConvertFormat, Filter, FilterBySize, Load, Save, SetCaption, Workflow
from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.nodes.base import PropertyNode
from beprepared_dagster.workflow import Workspace


class Noop(PropertyNode):
    reads: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        pass

    def compute(self, image):
        return {}


def names(workflow: Workflow) -> list[str]:
    return [s.name for s in workflow.stages]


def test_chain_with_bare_classes_on_both_sides(tmp_path):
    workflow = Workflow("dogs", Load(tmp_path) >> Noop >> FilterBySize(min_edge=512) >> Save)
    assert names(workflow) == ["load", "noop", "filter_by_size", "save"]
    assert [i.name for i in workflow.stage("save").inputs] == ["filter_by_size"]
    bare_left = Noop >> Save
    assert isinstance(bare_left, Save) and isinstance(bare_left.sources[0], Noop)


def test_lshift_and_concat_merge_branches_named_uniquely(tmp_path):
    base = Load(tmp_path) >> FilterBySize(min_edge=10)
    jpeg = base >> ConvertFormat("JPEG")
    png = base >> ConvertFormat("PNG")
    merged = Concat() << jpeg << png
    workflow = Workflow("branches", merged >> Save)
    assert names(workflow) == [
        "load",
        "filter_by_size",
        "convert_format",
        "convert_format_2",
        "concat",
        "save",
    ]
    assert [i.name for i in workflow.stage("concat").inputs] == ["convert_format", "convert_format_2"]
    other = Workflow("concat_args", Concat(Load(tmp_path / "a"), Load(tmp_path / "b")) >> Save)
    assert [i.name for i in other.stage("concat").inputs] == ["load", "load_2"]


def test_unknown_parameter_names_the_node_and_suggests(tmp_path):
    with pytest.raises(
        WorkflowError, match=r"FilterBySize: unknown parameter 'min_egde' \(did you mean 'min_edge'\?\)"
    ):
        FilterBySize(min_egde=512)


def test_bad_parameter_value_names_the_parameter():
    with pytest.raises(WorkflowError, match="ConvertFormat: format 'JPGG'"):
        ConvertFormat("JPGG")
    with pytest.raises(WorkflowError, match="FilterBySize: min_edge must be a positive number"):
        FilterBySize(min_edge=-1)


def test_graph_errors_name_the_stage(tmp_path):
    with pytest.raises(WorkflowError, match="has no Load"):
        Workflow("x", SetCaption("a") >> Save)
    a, b = Load(tmp_path / "a"), Load(tmp_path / "b")
    with pytest.raises(
        WorkflowError, match=r"stage 'filter_by_size' \(FilterBySize\) has 2 inputs but takes 1"
    ):
        Workflow("two_inputs", (a >> FilterBySize(min_edge=1)) << b)
    with pytest.raises(WorkflowError, match=r"stage 'load' \(Load\) takes no input"):
        Workflow("into_load", SetCaption("x") >> Load(tmp_path))


def test_cycle_is_reported_with_node_names(tmp_path):
    merge = Concat(Load(tmp_path))
    merge >> SetCaption("x") >> merge
    with pytest.raises(WorkflowError, match="has a cycle: Concat >> SetCaption >> Concat"):
        Workflow("cyclic", merge)


def test_save_cannot_feed_another_node(tmp_path):
    with pytest.raises(WorkflowError, match="writes the dataset and cannot feed"):
        Workflow("after_save", Load(tmp_path) >> Save() >> SetCaption("x"))


def test_invalid_workflow_and_stage_names(tmp_path):
    with pytest.raises(WorkflowError, match="workflow name 'My Data'"):
        Workflow("My Data", Load(tmp_path))
    with pytest.raises(WorkflowError, match="two stages are named 'same'"):
        Workflow("dup", Load(tmp_path) >> SetCaption("a", name="same") >> SetCaption("b", name="same"))


def test_fingerprint_follows_parameters_and_callable_source(tmp_path):
    assert FilterBySize(min_edge=512).fingerprint == FilterBySize(min_edge=512).fingerprint
    assert FilterBySize(min_edge=512).fingerprint != FilterBySize(min_edge=500).fingerprint
    assert ConvertFormat("jpg").fingerprint == ConvertFormat("JPEG").fingerprint
    assert Filter(lambda i: i.width > 1).fingerprint != Filter(lambda i: i.width > 2).fingerprint
    assert SetCaption("a", name="x").fingerprint == SetCaption("a").fingerprint  # names are not behaviour


def test_workspace_block_collects_its_nodes(tmp_path):
    with Workspace(tmp_path / "ws", name="collected") as workspace:
        Load(tmp_path) >> SetCaption("hi") >> Save
    workflow = workspace.workflow()
    assert workflow.name == "collected" and names(workflow) == ["load", "set_caption", "save"]
    assert workflow.workspace_dir == (tmp_path / "ws").resolve()
