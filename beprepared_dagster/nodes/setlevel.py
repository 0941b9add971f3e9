"""Set-level ordering and sampling: Take, Sorted, Shuffle.

Stages see images in partition insertion order, and a row carries no position of its own, so an order is a
property: Sorted and Shuffle set `_order` (0, 1, 2…), and order-sensitive set nodes (Take, ExactDedupe,
FuzzyDedupe's ties) read the dataset in that order, falling back to insertion order. The leading underscore
keeps it out of Save's sidecars.

Randomness is seeded (default 0), and keyed per image rather than drawn from one stream: an image's random
rank is a hash of (seed, image id). So the same seed picks the same images whatever the input order, and new
images arriving later leave the earlier picks in place unless they outrank them. `seed=None` is refused,
since an unseeded result would change on every run and never be cached.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar

from beprepared_dagster.nodes.base import Image, NodeContext, Outcome, SetNode

ORDER_PROP = "_order"


def dataset_order(images: list[Image]) -> list[int]:
    """Indices of `images` in dataset order: by `_order` where set, then upstream (insertion) order."""

    def key(i: int) -> tuple[bool, int, int]:
        rank = images[i].get(ORDER_PROP)
        return rank is None, rank if rank is not None else 0, i

    return sorted(range(len(images)), key=key)


def check_seed(seed: Any) -> None:
    if seed is None:
        raise ValueError(
            "seed=None is not allowed: an unseeded result changes on every run and is never cached; "
            "give an integer seed (the default is 0)"
        )
    if isinstance(seed, bool) or not isinstance(seed, int | str):
        raise ValueError(f"seed must be an integer or a string, got {seed!r}")


def random_ranks(images: list[Image], seed: int | str) -> list[str]:
    """A stable pseudo-random sort key per image: sha256(seed, image id, copy number)."""
    copies: Counter[str] = Counter()
    keys = []
    for image in images:
        ident = str(image.get("image_id") or image.get("objectid"))
        keys.append(hashlib.sha256(f"{seed}\0{ident}\0{copies[ident]}".encode()).hexdigest())
        copies[ident] += 1
    return keys


def _ordered(ranking: list[int]) -> list[Outcome]:
    """Keep every image, with `_order` = its position in `ranking`."""
    position = {index: rank for rank, index in enumerate(ranking)}
    return [Outcome.keep(**{ORDER_PROP: position[i]}) for i in range(len(ranking))]


class Take(SetNode):
    """Keep the first `n` images in dataset order (the order Sorted or Shuffle gave, else insertion order),
    or, with `random=True`, a seeded random sample of `n`. `n` larger than the dataset keeps everything.

    Args:
        n: how many images to keep.
        random: sample at random instead of taking the first n.
        seed: the sample's seed (ignored when random is False).
    """

    description: ClassVar[str] = "{n} images taken (random={random}, seed={seed})."
    writes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, n: int, random: bool = False, seed: int | str = 0) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        if not isinstance(random, bool):
            raise ValueError(f"random must be True or False, got {random!r}")
        check_seed(seed)

    @property
    def reads(self) -> tuple[str, ...]:  # type: ignore[override]
        return () if self.params["random"] else (ORDER_PROP,)

    def fingerprint_params(self) -> dict[str, Any]:
        params = super().fingerprint_params()
        if not self.params["random"]:
            params.pop("seed")  # Take(5, seed=1) and Take(5) are the same stage
        return params

    def decide(self, images: list[Image], ctx: NodeContext) -> list[Outcome]:
        n = self.params["n"]
        if self.params["random"]:
            ranks = random_ranks(images, self.params["seed"])
            chosen = set(sorted(range(len(images)), key=ranks.__getitem__)[:n])
            reason = f"not taken: outside the random sample of {n}"
        else:
            chosen = set(dataset_order(images)[:n])
            reason = f"not taken: beyond the first {n}"
        return [Outcome.keep() if i in chosen else Outcome.reject(reason) for i in range(len(images))]


class Sorted(SetNode):
    """Order the dataset by `key(image)` (ascending unless `reverse`), for a later Take.

    The sort is stable. Images whose key is None go last in either direction (the original raised).
    The key function's source is part of the cache key, so editing it re-sorts.

    Args:
        key: a function of the image, e.g. `lambda image: image.aesthetic_score`.
        reverse: sort descending.
    """

    description: ClassVar[str] = "Images ordered by a key function (reverse={reverse})."
    writes: ClassVar[tuple[str, ...]] = (ORDER_PROP,)

    def __init__(self, key: Callable[[Image], Any], reverse: bool = False) -> None:
        if not callable(key):
            raise ValueError(f"key must be a function of the image, got {key!r}")
        if not isinstance(reverse, bool):
            raise ValueError(f"reverse must be True or False, got {reverse!r}")
        self.key = key

    def decide(self, images: list[Image], ctx: NodeContext) -> list[Outcome]:
        base = dataset_order(images)
        values = [self.key(image) for image in images]
        present = [i for i in base if values[i] is not None]
        try:
            present.sort(key=values.__getitem__, reverse=self.params["reverse"])
        except TypeError as exc:
            kinds = sorted({type(values[i]).__name__ for i in present})
            raise TypeError(
                f"Sorted: the key returned values that cannot be compared ({', '.join(kinds)}): {exc}"
            ) from None
        return _ordered(present + [i for i in base if values[i] is None])


class Shuffle(SetNode):
    """Put the dataset in a seeded random order (for a later Take).

    Args:
        seed: the order's seed; the same seed gives the same order.
    """

    reads: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = "Images in a random order (seed={seed})."
    writes: ClassVar[tuple[str, ...]] = (ORDER_PROP,)

    def __init__(self, seed: int | str = 0) -> None:
        check_seed(seed)

    def decide(self, images: list[Image], ctx: NodeContext) -> list[Outcome]:
        ranks = random_ranks(images, self.params["seed"])
        return _ordered(sorted(range(len(images)), key=ranks.__getitem__))
