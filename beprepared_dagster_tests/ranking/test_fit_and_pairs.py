"""The ranking model alone: the Bradley–Terry fit recovers a known order from noisy synthetic comparisons
chosen by our pair choice, is independent of click order, treats ties and undo as documented; the pair choice
never repeats the pair on screen and covers every image.

Not covered: the stage, the app, Dagster (test_human_rank.py, labeling/)."""

from __future__ import annotations

import random
from types import SimpleNamespace

from beprepared_dagster.ranking import choose_pairs, fit, in_force, kendall_tau
from beprepared_dagster.ranking.bt import win_probability

TAU_BOUND = 0.6  # after comparisons_per_image × N / 2 clicks, with scores spread like real preferences


def simulate(n: int, per_image: int, seed: int) -> tuple[dict[str, float], list[tuple[str, str, float]]]:
    """n images with true Elo-scale strengths; a person who answers by the model (with its noise)."""
    rng = random.Random(seed)
    ids = [f"img{i:03d}" for i in range(n)]
    truth = {i: rng.gauss(1500, 250) for i in ids}
    comparisons: list[tuple[str, str, float]] = []
    seen: dict[frozenset[str], int] = {}
    last: list[tuple[str, str]] = []
    for step in range(per_image * n // 2):
        current = fit(comparisons, ids=ids)
        (a, b) = choose_pairs(ids, current.score_of(), current.count_of(), seen, 1, avoid=last, seed=step)[0]
        assert not last or {a, b} != set(last[0]), "the pair on screen came again right away"
        won = rng.random() < win_probability(truth[a], truth[b])
        comparisons.append((a, b, 1.0 if won else 0.0))
        seen[frozenset((a, b))] = seen.get(frozenset((a, b)), 0) + 1
        last = [(a, b)]
    return truth, comparisons


def test_fit_recovers_a_known_order_after_the_target_comparisons() -> None:
    for seed in (1, 2):
        truth, comparisons = simulate(40, 8, seed)
        result = fit(comparisons)
        tau = kendall_tau([truth[i] for i in result.ids], list(result.scores))
        assert tau >= TAU_BOUND, (seed, tau)
        assert min(result.counts) >= 6 and max(result.counts) <= 11  # coverage: everyone near 8


def test_fit_does_not_depend_on_click_order_and_is_centred() -> None:
    _, comparisons = simulate(12, 6, 3)
    forward = fit(comparisons).score_of()
    backward = fit(list(reversed(comparisons))).score_of()
    assert all(abs(forward[k] - backward[k]) < 1e-6 for k in forward)
    assert abs(sum(forward.values()) / len(forward) - 1500) < 40


def test_ties_pull_scores_together_and_only_wins_stay_finite() -> None:
    wins = fit([("a", "b", 1.0)] * 5).score_of()
    assert wins["a"] > wins["b"] and wins["a"] - wins["b"] < 2000  # finite, thanks to the prior
    tied = fit([("a", "b", 0.5)] * 5).score_of()
    assert abs(tied["a"] - tied["b"]) < 1e-6
    mixed = fit([("a", "b", 1.0), ("a", "b", 0.5), ("b", "a", 0.5)]).score_of()
    assert 0 < mixed["a"] - mixed["b"] < wins["a"] - wins["b"]


def test_undo_cancels_exactly_the_comparison_it_names() -> None:
    def entry(i: int, left: str, value: dict, rid: str) -> SimpleNamespace:
        return SimpleNamespace(id=i, image_id=left, value=value, request_id=rid)

    a, b, c = "a" * 64, "b" * 64, "c" * 64
    entries = [
        entry(1, a, {"vs": b, "result": 1}, "r1"),
        entry(2, b, {"vs": c, "result": 0.5}, "r2"),
        entry(3, a, {"undo": "r1"}, "r3"),
        entry(4, c, {"vs": a, "result": 0}, "r4"),
        entry(5, c, {"vs": c, "result": 1}, "r5"),  # an image against itself: ignored
    ]
    assert [(x.left, x.right, x.result) for x in in_force(entries)] == [(b, c, 0.5), (c, a, 0.0)]


def test_pair_choice_covers_every_image_and_prefers_close_scores() -> None:
    ids = [f"i{k}" for k in range(10)]
    pairs = choose_pairs(ids, {}, {}, {}, want=5, seed=7)
    assert len({x for p in pairs for x in p}) == 10  # five pairs, ten different images
    scores = {i: 1500 + 300 * k for k, i in enumerate(ids)}
    counts = {i: 4 for i in ids} | {"i5": 0}
    (pair,) = choose_pairs(ids, scores, counts, {}, want=1, seed=1)
    assert set(pair) in ({"i5", "i4"}, {"i5", "i6"})  # the least compared one, against a neighbour in score
    again = choose_pairs(ids, scores, counts, {}, want=1, avoid=[pair], seed=1)[0]
    assert set(again) != set(pair)
    only = choose_pairs(["x", "y"], {}, {}, {}, want=2, avoid=[("x", "y")])
    assert [set(p) for p in only] == [{"x", "y"}, {"x", "y"}]  # only one pair exists: it may repeat
