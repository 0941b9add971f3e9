"""HumanRank: a person compares two images at a time; every image gets a score from all comparisons.

Every comparison is its own journal entry (kind `rank`, keyed by the left image and `domain`; value
`{"vs": <right image>, "result": 1 | 0 | 0.5}`, undo `{"undo": <request id>}`). Scores are derived, never
stored as the truth: a Bradley–Terry fit over every comparison in force (see `ranking/bt.py`), so re-fitting
never loses work and the click order does not matter. A stage's "label" of an image is the derived
`{"score": …, "comparisons": n}`, whose id changes exactly when that image's shown score or count does — which
is how the label sensor re-materializes only the partitions whose score moved.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from beprepared_dagster.nodes.base import HumanNode, Image, Outcome
from beprepared_dagster.nodes.human import _check_domain
from beprepared_dagster.store.labels import Label, LabelJournal

COMPARISONS_PROP = "rank_comparisons"
BASE = 1500.0  # the average score (ranking/bt.py; numpy is imported only when a fit runs)


class HumanRank(HumanNode):
    """A person picks the better of two images at a time (← / A left, → / D right, ↓ / S can't tell, Z undo);
    each image gets its Bradley–Terry score on the Elo scale (1500 is average), fitted on every comparison of
    the domain, and how many comparisons it took part in. `Sorted(key=lambda i: i.rank_score, reverse=True)
    >> Take(100)` keeps the best 100.

    Args:
        comparisons_per_image: comparisons each image takes part in before the stage counts it as done.
        target_prop: the property that receives the score (`rank_comparisons` receives the count).
    """

    kind = "rank"
    description = (
        "A person picks the better of two images; {target_prop} is each image's Bradley–Terry score (Elo "
        "scale), rank_comparisons its number of comparisons (domain {domain})."
    )
    writes = ("{target_prop}", "rank_comparisons")

    def __init__(
        self,
        domain: str = "default",
        comparisons_per_image: int = 8,
        target_prop: str = "rank_score",
        skip_ui: bool = False,
    ) -> None:
        _check_domain(domain)
        if (
            not isinstance(comparisons_per_image, int)
            or isinstance(comparisons_per_image, bool)
            or not 1 <= comparisons_per_image <= 1000
        ):
            raise ValueError(
                f"comparisons_per_image must be an integer from 1 to 1000, not {comparisons_per_image!r}"
            )
        if not isinstance(target_prop, str) or not target_prop.isidentifier():
            raise ValueError(f"target_prop must be a property name, not {target_prop!r}")

    @property
    def target(self) -> int:
        return int(self.params["comparisons_per_image"])

    def is_labeled(self, label: Mapping[str, Any] | None) -> bool:
        return label is not None and int(label.get("comparisons") or 0) >= self.target

    def outcome(self, image: Image, label: Mapping[str, Any] | None) -> Outcome | None:
        if not self.is_labeled(label):
            if not self.params["skip_ui"]:
                return None
            label = label or {"score": BASE, "comparisons": 0}
        return Outcome.keep(
            **{self.params["target_prop"]: float(label["score"]), COMPARISONS_PROP: int(label["comparisons"])}  # type: ignore[index]
        )

    def derive_labels(
        self, journal: LabelJournal, image_ids: Iterable[str] | None = None
    ) -> dict[str, Label]:
        """The derived label of every compared image (of `image_ids`, when given)."""
        labels = derived_labels(journal, self.params["domain"])
        if image_ids is None:
            return labels
        return {k: labels[k] for k in image_ids if k in labels}


_cache: dict[tuple[str, str], tuple[tuple[int, int], dict[str, Label]]] = {}
_cache_lock = threading.Lock()


def derived_labels(journal: LabelJournal, domain: str) -> dict[str, Label]:
    """Per compared image: `{"score": s, "comparisons": n}` from a fit over every comparison of `domain`
    (cached until the domain gets a new entry)."""
    from beprepared_dagster.ranking import fit, in_force

    entries = journal.entries(domain, "rank")
    key = (str(journal.path), domain)
    state = (entries[-1].id if entries else 0, len(entries))
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == state:
            return cached[1]
    comparisons = in_force(entries)
    result = fit(comparisons)
    ts = entries[-1].ts if entries else 0.0
    labels = {}
    for image_id, score, count in zip(result.ids, result.scores, result.counts, strict=True):
        value = {"score": round(float(score), 1), "comparisons": int(count)}
        labels[image_id] = Label(_value_id(value), domain, "rank", image_id, value, ts)
    with _cache_lock:
        _cache[key] = (state, labels)
    return labels


def _value_id(value: Mapping[str, Any]) -> int:
    """A positive 60-bit id that changes when the shown score or count does (what `human_applied` records)."""
    text = f"{value['score']:.1f}|{value['comparisons']}"
    return int(hashlib.sha256(text.encode()).hexdigest()[:15], 16) or 1
