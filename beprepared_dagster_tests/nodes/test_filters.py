"""Unit tests of the filter nodes: FilterBySize, FilterByAspectRatio and Filter(predicate).

Each node is driven directly through `process` (the executor's entry point) with hand-made `Image`s, and its
constructor through the workflow metaclass (so bad parameters surface as `WorkflowError`).

Not covered here: caching and fingerprints of filters (executor/workflow tests), how rejections are counted
and shown in Dagster metadata, and the DSL wiring (`>>`) of filters into a workflow.
"""

from __future__ import annotations

import pytest

from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.nodes import Filter, FilterByAspectRatio, FilterBySize, Image, Outcome


def image(width: int, height: int, **props) -> Image:
    return Image({"width": width, "height": height, "objectid": "0" * 64, **props})


def run(node, img: Image) -> Outcome:
    [outcome] = node.process([img], None)
    return outcome


def reason(node, width: int, height: int) -> str | None:
    outcome = run(node, image(width, height))
    assert outcome.kept == (outcome.reason is None)
    assert outcome.set == {}  # filters never change properties
    return outcome.reason


# --- FilterBySize ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "limit", "kept", "rejected", "expected_reason"),
    [
        ("min_width", 100, (100, 10), (99, 1000), "too small: width 99 < min_width 100"),
        ("min_height", 100, (10, 100), (1000, 99), "too small: height 99 < min_height 100"),
        ("max_width", 100, (100, 1000), (101, 10), "too large: width 101 > max_width 100"),
        ("max_height", 100, (1000, 100), (10, 101), "too large: height 101 > max_height 100"),
    ],
)
def test_filter_by_size_side_bounds_are_inclusive_and_explain_rejections(
    param, limit, kept, rejected, expected_reason
):
    node = FilterBySize(**{param: limit})
    assert reason(node, *kept) is None
    assert reason(node, *rejected) == expected_reason


def test_min_edge_bounds_the_shorter_side_in_either_orientation():
    node = FilterBySize(min_edge=512)
    assert reason(node, 512, 2000) is None
    assert reason(node, 2000, 512) is None
    # The longer side being big does not help: the shorter one is measured.
    assert reason(node, 2000, 511) == "too small: edge 511 < min_edge 512"
    assert reason(node, 511, 2000) == "too small: edge 511 < min_edge 512"


def test_max_edge_bounds_the_longer_side_in_either_orientation():
    node = FilterBySize(max_edge=1024)
    assert reason(node, 1024, 10) is None
    assert reason(node, 10, 1024) is None
    # The shorter side being small does not help: the longer one is measured.
    assert reason(node, 1025, 10) == "too large: edge 1025 > max_edge 1024"
    assert reason(node, 10, 1025) == "too large: edge 1025 > max_edge 1024"


def test_photos_fixture_min_edge_512_keeps_only_the_big_images():
    node = FilterBySize(min_edge=512)
    assert reason(node, 640, 480) == "too small: edge 480 < min_edge 512"
    node = FilterBySize(min_edge=480)
    assert reason(node, 640, 480) is None
    assert reason(node, 320, 200) == "too small: edge 200 < min_edge 480"


def test_several_bounds_all_apply():
    node = FilterBySize(min_edge=100, max_edge=1000, max_width=800)
    assert reason(node, 800, 600) is None
    assert reason(node, 99, 600).startswith("too small: edge 99")
    assert reason(node, 600, 1001).startswith("too large: edge 1001")
    assert reason(node, 900, 600) == "too large: width 900 > max_width 800"


def test_float_bounds_are_accepted():
    node = FilterBySize(min_edge=99.5)
    assert reason(node, 100, 100) is None
    assert reason(node, 99, 100) is not None


@pytest.mark.parametrize(
    "param", ["min_width", "min_height", "min_edge", "max_width", "max_height", "max_edge"]
)
@pytest.mark.parametrize("bad", [-1, 0, "512", True])
def test_filter_by_size_rejects_bad_bounds_naming_the_parameter(param, bad):
    with pytest.raises(WorkflowError) as info:
        FilterBySize(**{param: bad})
    message = str(info.value)
    assert "FilterBySize" in message
    assert param in message
    assert repr(bad) in message


def test_filter_by_size_needs_at_least_one_bound():
    with pytest.raises(WorkflowError, match="FilterBySize.*at least one bound"):
        FilterBySize()
    with pytest.raises(WorkflowError, match="FilterBySize.*at least one bound"):
        FilterBySize(min_width=None, max_edge=None)


def test_filter_by_size_unknown_parameter_suggests_the_right_one():
    with pytest.raises(
        WorkflowError, match=r"FilterBySize: unknown parameter 'min_edges' \(did you mean 'min_edge'\?\)"
    ):
        FilterBySize(min_edges=512)


@pytest.mark.parametrize(
    ("low", "high"),
    [("min_width", "max_width"), ("min_height", "max_height"), ("min_edge", "max_edge")],
)
def test_filter_by_size_contradictory_bounds_are_an_error(low, high):
    """A lower bound above its upper bound keeps no image at all: surely a typo, like FilterByAspectRatio's
    min_aspect > max_aspect (which is refused)."""
    with pytest.raises(WorkflowError, match=f"FilterBySize.*{low}"):
        FilterBySize(**{low: 1024, high: 512})


def test_filter_by_size_equal_bounds_are_allowed():
    node = FilterBySize(min_edge=512, max_edge=512)
    assert reason(node, 512, 512) is None
    assert reason(node, 513, 512) is not None


def test_filter_by_size_reads_only_width_and_height():
    # What the cache key covers: a caption change must not recompute a size filter.
    assert FilterBySize(min_edge=1).reads == ("width", "height")


# --- FilterByAspectRatio --------------------------------------------------------------------------------


def test_aspect_ratio_bounds_are_inclusive():
    node = FilterByAspectRatio(min_aspect=1.0, max_aspect=1.5)
    assert reason(node, 100, 100) is None
    assert reason(node, 150, 100) is None
    assert reason(node, 99, 100) == "aspect 0.990 < min_aspect 1.0"
    assert reason(node, 151, 100) == "aspect 1.510 > max_aspect 1.5"


def test_aspect_ratio_single_bound():
    assert reason(FilterByAspectRatio(min_aspect=1), 1000, 10) is None
    assert reason(FilterByAspectRatio(min_aspect=1), 10, 1000) == "aspect 0.010 < min_aspect 1"
    assert reason(FilterByAspectRatio(max_aspect=1), 10, 1000) is None
    assert reason(FilterByAspectRatio(max_aspect=1), 1000, 10) == "aspect 100.000 > max_aspect 1"


def test_aspect_ratio_min_above_max_is_an_error():
    with pytest.raises(WorkflowError) as info:
        FilterByAspectRatio(min_aspect=2.0, max_aspect=0.5)
    message = str(info.value)
    assert message.startswith("FilterByAspectRatio:")
    assert "min_aspect 2.0" in message and "max_aspect 0.5" in message


def test_aspect_ratio_equal_bounds_keep_exactly_that_ratio():
    node = FilterByAspectRatio(min_aspect=1.0, max_aspect=1.0)
    assert reason(node, 64, 64) is None
    assert reason(node, 65, 64) is not None


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"min_aspect": -1.0}, "min_aspect"),
        ({"max_aspect": 0}, "max_aspect"),
        ({"min_aspect": "wide"}, "min_aspect"),
        ({}, "min_aspect, max_aspect or both"),
    ],
)
def test_aspect_ratio_bad_parameters(kwargs, named):
    with pytest.raises(WorkflowError, match="FilterByAspectRatio") as info:
        FilterByAspectRatio(**kwargs)
    assert named in str(info.value)


# --- Filter(predicate) -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, 1, "yes", [0], {"a": 1}, 0.5])
def test_filter_keeps_on_truthy_results(value):
    assert reason(Filter(lambda image: value), 10, 10) is None


@pytest.mark.parametrize("value", [False, 0, "", [], None, 0.0])
def test_filter_rejects_on_falsy_results(value):
    assert reason(Filter(lambda image: value), 10, 10) == "predicate was false"


def test_filter_predicate_sees_plain_property_values():
    seen = []

    def predicate(image):
        seen.append((image.width, image["height"], image.get("caption"), image.get("missing")))
        return image.width > 100 and "cat" in image.get("caption", "")

    node = Filter(predicate)
    assert run(node, image(200, 50, caption="a cat")).kept
    assert not run(node, image(50, 50, caption="a cat")).kept
    assert not run(node, image(200, 50, caption="a dog")).kept
    assert seen[0] == (200, 50, "a cat", None)
    assert type(seen[0][0]) is int  # a plain value, not a wrapper the user must unwrap


def test_filter_predicate_gets_aspect_ratio_and_a_read_only_image():
    def predicate(image):
        with pytest.raises(AttributeError, match="read-only"):
            image.width = 1
        return image.aspect_ratio > 1

    assert reason(Filter(predicate), 200, 100) is None
    assert reason(Filter(predicate), 100, 200) == "predicate was false"


def test_filter_predicate_on_a_missing_property_names_the_existing_ones():
    node = Filter(lambda image: image.score > 0.5)
    with pytest.raises(AttributeError) as info:
        run(node, image(10, 10))
    message = str(info.value)
    assert "'score'" in message and "'width'" in message and "image.get('score')" in message


def test_filter_predicate_errors_propagate():
    def predicate(image):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run(Filter(predicate), image(10, 10))


def test_filter_requires_a_callable():
    with pytest.raises(WorkflowError, match="Filter: predicate must be callable"):
        Filter(True)
    with pytest.raises(WorkflowError, match="Filter"):
        Filter()


def test_filter_process_handles_a_batch_in_order():
    node = Filter(lambda image: image.width % 2 == 0)
    outcomes = node.process([image(w, 1) for w in (2, 3, 4, 5)], None)
    assert [o.kept for o in outcomes] == [True, False, True, False]
