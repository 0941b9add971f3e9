"""A HumanRank tab: the comparisons in force, the current fit, the next pairs to show and the counters.

The fit is redone only when the journal has new entries of the tab's domain (cached by entry count), so a
poll or a request for pairs costs a dictionary lookup most of the time.
"""

from __future__ import annotations

import threading
from typing import Any

from beprepared_dagster.labeling.queue import Snapshot, StageQueue
from beprepared_dagster.ranking import Comparison, choose_pairs, fit, in_force
from beprepared_dagster.ranking.bt import settled

MAX_PAIRS = 32


class RankState:
    """Comparisons of one (domain) and their fit, for a rank tab's queue."""

    def __init__(self, queue: StageQueue) -> None:
        self.queue = queue
        self._lock = threading.Lock()
        self._seen_entries = -1
        self._comparisons: list[Comparison] = []
        self._scores: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._pairs: dict[frozenset[str], int] = {}
        self._settled: float | None = None

    @property
    def target(self) -> int:
        return int(self.queue.node.params["comparisons_per_image"])

    def _update(self) -> None:
        entries = self.queue.journal.entries(self.queue.domain, self.queue.kind)
        with self._lock:
            if len(entries) == self._seen_entries:
                return
            comparisons = in_force(entries)
            result = fit(comparisons)
            pairs: dict[frozenset[str], int] = {}
            for c in comparisons:
                key = frozenset((c.left, c.right))
                pairs[key] = pairs.get(key, 0) + 1
            self._comparisons, self._pairs = comparisons, pairs
            self._scores, self._counts = result.score_of(), result.count_of()
            self._settled = settled(comparisons)
            self._seen_entries = len(entries)

    def pairs(
        self, snap: Snapshot, want: int, avoid: list[tuple[str, str]], seed: int
    ) -> list[dict[str, Any]]:
        """The next `want` pairs among the images of `snap` (items as the browser shows them)."""
        self._update()
        ids = [it.image_id for it in snap.items]
        chosen = choose_pairs(
            ids, self._scores, self._counts, self._pairs, max(0, min(want, MAX_PAIRS)), avoid, seed
        )
        at = snap.index or {}

        def item(image_id: str) -> dict[str, Any]:
            return {**snap.items[at[image_id]].to_json(), "size": "pair"}  # the smaller display copy

        return [{"a": item(a), "b": item(b)} for a, b in chosen]

    def counts(self, snap: Snapshot) -> dict[str, Any]:
        """Images at their target, comparisons done and needed, how settled the ranking is."""
        self._update()
        total = len(snap.items)
        done = sum(1 for it in snap.items if self._counts.get(it.image_id, 0) >= self.target)
        present = set(snap.index or {})
        compared = sum(1 for c in self._comparisons if c.left in present and c.right in present)
        return {
            "total": total,
            "kept": done,
            "rejected": 0,
            "remaining": total - done,
            "comparisons": compared,
            "target": -(-self.target * total // 2) if total > 1 else 0,
            "settled": None if self._settled is None else round(100 * self._settled),
        }
