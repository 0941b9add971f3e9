"""Which pairs to show next, so that a ranking of N images settles in about `comparisons_per_image × N / 2`
clicks.

Each pair starts from an image with the fewest comparisons (coverage: every image reaches its target at about
the same time) and adds the partner that teaches the most about it: the outcome is least predictable when the
current scores are close (information ∝ p·(1−p)), an image with fewer comparisons is preferred, and a pair
already compared is discounted. The pair just shown is never shown again right away (unless only one pair
exists). Pairs handed out but not decided yet count as compared, so a client can hold several ahead.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from beprepared_dagster.ranking.bt import win_probability


def choose_pairs(
    ids: Sequence[str],
    scores: Mapping[str, float],
    counts: Mapping[str, int],
    seen: Mapping[frozenset[str], int],
    want: int,
    avoid: Iterable[tuple[str, str]] = (),
    seed: int = 0,
) -> list[tuple[str, str]]:
    """Up to `want` pairs of `ids`. `scores`/`counts`: current score and comparisons per id (missing: average,
    0); `seen`: how often each pair was compared; `avoid`: pairs already handed out (the last one is the pair
    on screen)."""
    n = len(ids)
    if n < 2 or want <= 0:
        return []
    rng = random.Random(seed)
    index = {name: k for k, name in enumerate(ids)}
    score = np.array([scores.get(i, 1500.0) for i in ids], dtype=float)
    count = np.array([counts.get(i, 0) for i in ids], dtype=float)
    partners: dict[int, dict[int, int]] = {}
    last: tuple[int, int] | None = None

    def met(a: int, b: int, times: int = 1) -> None:
        partners.setdefault(a, {})[b] = partners.get(a, {}).get(b, 0) + times
        partners.setdefault(b, {})[a] = partners.get(b, {}).get(a, 0) + times

    for pair, times in seen.items():
        known = [index[x] for x in pair if x in index]
        if len(known) == 2:
            met(known[0], known[1], times)
    for a, b in avoid:
        if a in index and b in index and a != b:
            last = (index[a], index[b])
            met(*last)
            count[list(last)] += 1
    pairs: list[tuple[str, str]] = []
    for _ in range(want):
        first = _least_compared(count, rng)
        second = _partner(first, score, count, partners.get(first, {}), last, n)
        if second is None:
            break
        pairs.append((ids[first], ids[second]) if rng.random() < 0.5 else (ids[second], ids[first]))
        last = (first, second)
        met(first, second)
        count[[first, second]] += 1
    return pairs


def _least_compared(count: np.ndarray, rng: random.Random) -> int:
    candidates = np.flatnonzero(count == count.min())
    return int(candidates[rng.randrange(len(candidates))])


def _partner(
    first: int,
    score: np.ndarray,
    count: np.ndarray,
    partners: Mapping[int, int],
    last: tuple[int, int] | None,
    n: int,
) -> int | None:
    p = win_probability(score[first], score)
    value = p * (1.0 - p) / (1.0 + count)
    value[first] = -np.inf
    for other, times in partners.items():
        value[other] /= 1.0 + 4.0 * times
    if last is not None and first in last and n > 2:
        value[last[1] if last[0] == first else last[0]] = -np.inf
    best = int(np.argmax(value))
    return best if np.isfinite(value[best]) else None
