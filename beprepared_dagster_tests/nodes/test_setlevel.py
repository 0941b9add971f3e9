"""Unit tests of Take, Sorted and Shuffle (`decide` on plain images carrying `image_id`), and one headless run
of Sorted >> Take through the executor and Dagster.

Not covered here: how the executor caches set decisions (orchestration/test_set_stages.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from beprepared_dagster import Load, Shuffle, Sorted, Take, Workflow
from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.nodes import Image, NodeContext
from beprepared_dagster.nodes.setlevel import ORDER_PROP
from beprepared_dagster.store import WorkspaceStore
from beprepared_dagster.store.stages import read_rows
from beprepared_dagster_tests.conftest import make_image

CTX = NodeContext(objects=None, log=logging.getLogger("test"))  # type: ignore[arg-type]


def images(count: int, start: int = 0, **props) -> list[Image]:
    return [
        Image({"image_id": f"{i:064x}", "objectid": f"{i:064x}", "n": i, **props})
        for i in range(start, start + count)
    ]


def kept(images_: list[Image], outcomes) -> list[int]:
    return [image["n"] for image, outcome in zip(images_, outcomes, strict=True) if outcome.kept]


def in_order(images_: list[Image], outcomes) -> list[int]:
    """The `n` of each image in the order the outcomes' `_order` gives."""
    ranked = sorted(zip(images_, outcomes, strict=True), key=lambda pair: pair[1].set[ORDER_PROP])
    return [image["n"] for image, _ in ranked]


def apply(images_: list[Image], outcomes) -> list[Image]:
    """What a downstream stage sees: kept images with the properties set."""
    return [i.with_props(**o.set) for i, o in zip(images_, outcomes, strict=True) if o.kept]


# --- Take --------------------------------------------------------------------------------------------------


def test_take_keeps_the_first_n_in_insertion_order():
    batch = images(5)
    outcomes = Take(2).decide(batch, CTX)
    assert kept(batch, outcomes) == [0, 1]
    assert {o.reason for o in outcomes if not o.kept} == {"not taken: beyond the first 2"}


def test_take_more_than_there_are_keeps_everything_and_zero_keeps_nothing():
    batch = images(3)
    assert kept(batch, Take(10).decide(batch, CTX)) == [0, 1, 2]
    assert kept(batch, Take(0).decide(batch, CTX)) == []
    assert Take(3).decide([], CTX) == []


def test_take_after_sorted_takes_the_top_of_the_sorted_order():
    batch = [i.with_props(score=s) for i, s in zip(images(5), [3, 9, 1, 7, 5], strict=True)]
    ranked = apply(batch, Sorted(lambda image: image.score, reverse=True).decide(batch, CTX))
    assert kept(ranked, Take(2).decide(ranked, CTX)) == [1, 3]  # scores 9 and 7


def test_random_take_is_reproducible_and_independent_of_input_order():
    batch = images(100)
    first = kept(batch, Take(10, random=True, seed=7).decide(batch, CTX))
    again = kept(batch, Take(10, random=True, seed=7).decide(batch, CTX))
    reversed_batch = batch[::-1]
    backwards = kept(reversed_batch, Take(10, random=True, seed=7).decide(reversed_batch, CTX))
    assert len(first) == 10 and first == again and sorted(backwards) == first
    assert first != list(range(10))
    assert kept(batch, Take(10, random=True, seed=8).decide(batch, CTX)) != first


def test_random_take_keeps_earlier_picks_when_images_are_added():
    """New images may displace picks, but never bring back an image that was not picked before."""
    before = set(kept(images(100), Take(10, random=True).decide(images(100), CTX)))
    grown = images(100) + images(20, start=100)
    after = set(kept(grown, Take(10, random=True).decide(grown, CTX)))
    assert {n for n in after if n < 100} <= before
    assert len(after) == 10


def test_random_take_treats_copies_of_one_image_separately():
    """Concat can hand the same image twice (two branches): each copy is drawn on its own, so either copy
    can be the one picked (with one shared rank the first copy would always win)."""
    batch = images(1) * 2
    picked = set()
    for seed in range(20):
        outcomes = Take(1, random=True, seed=seed).decide(batch, CTX)
        assert [o.kept for o in outcomes].count(True) == 1
        picked.add(outcomes.index(next(o for o in outcomes if o.kept)))
    assert picked == {0, 1}


def test_seed_none_is_refused_and_seed_is_ignored_without_random():
    with pytest.raises(WorkflowError, match="^Take: seed=None is not allowed"):
        Take(5, random=True, seed=None)
    with pytest.raises(WorkflowError, match="^Shuffle: seed=None is not allowed"):
        Shuffle(seed=None)
    assert Take(5, seed=3).fingerprint == Take(5).fingerprint
    assert Take(5, random=True, seed=3).fingerprint != Take(5, random=True).fingerprint


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Take(-1), "Take: n must be a non-negative integer"),
        (lambda: Take(2.5), "Take: n must be a non-negative integer"),
        (lambda: Take(True), "Take: n must be a non-negative integer"),
        (lambda: Take(2, random="yes"), "Take: random must be True or False"),
        (lambda: Take(2, seed=1.5), "Take: seed must be an integer or a string"),
        (lambda: Sorted("width"), "Sorted: key must be a function of the image"),
        (lambda: Sorted(len, reverse=None), "Sorted: reverse must be True or False"),
    ],
)
def test_bad_parameters_name_the_parameter(build, message):
    with pytest.raises(WorkflowError) as info:
        build()
    assert str(info.value).startswith(message)


# --- Sorted and Shuffle ------------------------------------------------------------------------------------


def test_sorted_orders_by_key_and_is_stable():
    batch = [i.with_props(group=g) for i, g in zip(images(6), [2, 1, 2, 1, 0, 2], strict=True)]
    outcomes = Sorted(lambda image: image.group).decide(batch, CTX)
    assert all(o.kept for o in outcomes)
    assert in_order(batch, outcomes) == [4, 1, 3, 0, 2, 5]
    assert in_order(batch, Sorted(lambda image: image.group, reverse=True).decide(batch, CTX)) == [
        0,
        2,
        5,
        1,
        3,
        4,
    ]


def test_sorted_puts_missing_keys_last_in_both_directions():
    batch = [i.with_props(score=s) for i, s in zip(images(4), [2, None, 5, 1], strict=True)]
    by_score = Sorted(lambda image: image.get("score"))
    assert in_order(batch, by_score.decide(batch, CTX)) == [3, 0, 2, 1]
    assert in_order(batch, Sorted(lambda image: image.get("score"), reverse=True).decide(batch, CTX)) == [
        2,
        0,
        3,
        1,
    ]


def test_sorted_on_incomparable_keys_says_which_types_clash():
    batch = [i.with_props(v=v) for i, v in zip(images(2), [1, "a"], strict=True)]
    with pytest.raises(TypeError, match=r"cannot be compared \(int, str\)"):
        Sorted(lambda image: image.v).decide(batch, CTX)


def test_a_second_sort_breaks_ties_by_the_first():
    batch = [i.with_props(a=a, b=b) for i, a, b in zip(images(4), [1, 1, 0, 0], [0, 1, 0, 1], strict=True)]
    by_b = apply(batch, Sorted(lambda image: image.b, reverse=True).decide(batch, CTX))
    assert in_order(by_b, Sorted(lambda image: image.a).decide(by_b, CTX)) == [3, 2, 1, 0]


def test_shuffle_is_a_seeded_permutation():
    batch = images(30)
    order = in_order(batch, Shuffle().decide(batch, CTX))
    assert sorted(order) == list(range(30)) and order != list(range(30))
    assert in_order(batch, Shuffle().decide(batch, CTX)) == order
    assert in_order(batch, Shuffle(seed=1).decide(batch, CTX)) != order
    shuffled = apply(batch, Shuffle().decide(batch, CTX))
    assert kept(shuffled, Take(3).decide(shuffled, CTX)) == sorted(order[:3])


def test_sort_key_edits_change_the_fingerprint():
    assert Sorted(lambda image: image.width).fingerprint != Sorted(lambda image: image.height).fingerprint
    assert (
        Sorted(lambda image: image.width).fingerprint
        != Sorted(lambda image: image.width, reverse=True).fingerprint
    )


# --- through the executor ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_sorted_then_take_through_a_headless_run(tmp_path: Path, workspace_dir: Path):
    folder = tmp_path / "photos"
    widths = {"a": 300, "b": 100, "c": 500, "d": 200}
    for seed, (name, width) in enumerate(widths.items()):
        make_image(folder / f"{name}.jpg", width, 64, seed=seed)
    Workflow(
        "sets",
        Load(folder) >> Sorted(lambda image: image.width, reverse=True) >> Take(2),
        workspace=workspace_dir,
    ).run()
    with WorkspaceStore(workspace_dir).db.connect() as conn:
        taken = read_rows(conn, "sets", "take")
    kept_paths = sorted(
        Path(r[0].props["original_path"]).stem for r in taken.values() if r[0].status == "kept"
    )
    assert kept_paths == ["a", "c"]  # the two widest
    reasons = {r[0].reason for r in taken.values() if r[0].status != "kept"}
    assert reasons == {"not taken: beyond the first 2"}
