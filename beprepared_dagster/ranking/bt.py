"""The Bradley–Terry model fitted on every comparison, reported on the Elo scale.

Why Bradley–Terry and not Elo updates: an Elo rating depends on the order of the clicks (the same comparisons
in another order give other ratings, and an undo cannot be taken back exactly); a Bradley–Terry fit is a
function of the set of comparisons only, so undo, re-fit after a crash, or two people labeling at once all
give the same scores. The fit is the maximum a-posteriori strength of each image, with ties counting half a
win for each side and a weak prior (one virtual tie of every image against an average one) that keeps images
with only wins or only losses finite and makes a partly connected comparison graph well defined.

Scores: `BASE + 400·log10(strength)`, the Elo convention (1500 is average; 400 points more means 10:1 odds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BASE = 1500.0
SCALE = 400.0 / np.log(10.0)  # Elo points per unit of natural-log strength
PRIOR_GAMES = 1.0


@dataclass(frozen=True)
class Fit:
    ids: list[str]
    scores: np.ndarray  # Elo-scale score per id
    counts: np.ndarray  # comparisons per id

    def score_of(self) -> dict[str, float]:
        return {i: float(s) for i, s in zip(self.ids, self.scores, strict=True)}

    def count_of(self) -> dict[str, int]:
        return {i: int(c) for i, c in zip(self.ids, self.counts, strict=True)}


def fit(
    comparisons: Sequence[tuple[str, str, float]] | Sequence[object],
    ids: Sequence[str] | None = None,
    tolerance: float = 1e-7,
    max_iterations: int = 2000,
) -> Fit:
    """Fit strengths to `comparisons` ((left, right, result) tuples or objects with those attributes; result
    1 = left better, 0 = right better, 0.5 = tie). `ids`: images to score besides those compared (they get
    the average score). Minorization–maximization (Hunter 2004), which converges for any data with the prior."""
    left, right, result = _arrays(comparisons)
    names = list(dict.fromkeys([*(ids or []), *left, *right]))
    index = {name: i for i, name in enumerate(names)}
    n = len(names)
    if n == 0:
        return Fit([], np.zeros(0), np.zeros(0, dtype=int))
    a = np.fromiter((index[x] for x in left), dtype=np.int64, count=len(left))
    b = np.fromiter((index[x] for x in right), dtype=np.int64, count=len(right))
    counts = np.bincount(a, minlength=n) + np.bincount(b, minlength=n)
    wins = np.bincount(a, weights=result, minlength=n) + np.bincount(b, weights=1.0 - result, minlength=n)
    wins = wins.astype(float) + PRIOR_GAMES / 2
    strength = np.ones(n)
    for _ in range(max_iterations):
        pair = 1.0 / (strength[a] + strength[b])
        denominator = np.bincount(a, weights=pair, minlength=n) + np.bincount(b, weights=pair, minlength=n)
        denominator = denominator + PRIOR_GAMES / (strength + 1.0)
        updated = wins / denominator
        change = np.max(np.abs(np.log(updated) - np.log(strength)))
        strength = updated
        if change < tolerance:
            break
    return Fit(names, BASE + SCALE * np.log(strength), counts.astype(int))


def win_probability(score_a: np.ndarray | float, score_b: np.ndarray | float) -> np.ndarray | float:
    """P(a judged better than b) under the model, from Elo-scale scores."""
    return 1.0 / (1.0 + 10.0 ** ((np.asarray(score_b) - np.asarray(score_a)) / 400.0))


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's τ-a between two score lists of the same items (1: same order, -1: reversed)."""
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(xa)
    if n < 2:
        return 1.0
    dx = np.sign(xa[:, None] - xa[None, :])
    dy = np.sign(ya[:, None] - ya[None, :])
    upper = np.triu_indices(n, 1)
    return float(np.sum(dx[upper] * dy[upper]) / len(upper[0]))


def settled(comparisons: Sequence[object], sample: int = 1500) -> float | None:
    """How settled the ranking is, 0-1: Kendall τ (clipped at 0) between the ranking now and the ranking
    without the latest fifth of the comparisons (at least 5). None before there is anything to compare."""
    if len(comparisons) < 10:
        return None
    drop = max(5, len(comparisons) // 5)
    now = fit(comparisons)
    before = fit(comparisons[:-drop], ids=now.ids).score_of()
    ids = now.ids[:sample]
    tau = kendall_tau([now.score_of()[i] for i in ids], [before[i] for i in ids])
    return max(0.0, tau)


def _arrays(comparisons: Sequence[object]) -> tuple[list[str], list[str], np.ndarray]:
    left, right, result = [], [], []
    for c in comparisons:
        if isinstance(c, tuple):
            l_id, r_id, res = c
        else:
            l_id, r_id, res = c.left, c.right, c.result  # type: ignore[attr-defined]
        left.append(l_id)
        right.append(r_id)
        result.append(float(res))
    return left, right, np.asarray(result, dtype=float)
