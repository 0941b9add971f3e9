"""Python's cyclic garbage collector around a headless run.

A run keeps a lot alive for its whole length (Dagster's definitions and, in `execute_in_process`'s result,
every event of the run: tens of thousands at 5,000 images × 4 stages), so with Python's default thresholds
the full (oldest-generation) collection ran about a dozen times in a cold 5,000-image run, each one walking
every live object: ~1.2 s of a ~16 s run on the 2-core benchmark machine (bench/RESULTS-ingest.md). The
young generations still collect as usual, so short-lived cycles are freed as before; only the walk over the
long-lived heap is put off until after the run.

A process that ends with its run (a script, `beprepared run`) also skips the collection Python makes while
shutting down (another ~0.35 s there): nothing it would free matters once the process exits, and Python
does not promise finalizers at exit anyway. Files left open (never closed, in a reference cycle) are
flushed first, which the interpreter's own shutdown does not always do.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import io
import itertools
from collections.abc import Iterator
from contextlib import contextmanager

# Young (generation 1) collections between two full ones while a run works; Python's default is 10.
FULL_COLLECTION_EVERY = 1000


_depth = 0  # few_full_collections blocks entered and not left
_frozen = False  # no_collection froze what its block built; the outermost few_full_collections thaws it


@contextmanager
def few_full_collections() -> Iterator[None]:
    """Run the body with full collections put off (see above); the caller's thresholds come back after, and
    whatever `no_collection` set aside meanwhile is within the collector's reach again."""
    global _depth, _frozen
    threshold = gc.get_threshold()
    gc.set_threshold(threshold[0], threshold[1], max(threshold[2], FULL_COLLECTION_EVERY))
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        gc.set_threshold(*threshold)
        if not _depth and _frozen:
            _frozen = False
            gc.unfreeze()


@contextmanager
def no_collection() -> Iterator[None]:
    """Run the body with the collector off, as it was after. For imports and set-up: importing Dagster
    builds ~1,500 modules' worth of objects that live as long as the process, and the collector, counting
    allocations, walked them ~250 times meanwhile, the whole heap twice (~0.15 s of a ~3 s re-run on the
    2-core benchmark machine), finding nothing to free.

    What exists when the block ends is then set aside (`gc.freeze`) until the run's outermost
    `few_full_collections` ends: otherwise the first young collection after the block walked all of it at
    once (~0.14 s after the imports, ~0.12 s after the instance's set-up), again finding nothing. A block
    outside any run (`beprepared run`'s imports) stays set aside until the next run ends."""
    global _frozen
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        _frozen = True
        if was:
            gc.enable()


def no_collection_at_exit() -> None:
    """For a process that ends after its run: at exit, move every object out of the collector's reach
    (`gc.freeze`), so that the interpreter's shutdown does not walk the whole heap once more. Registered
    before the run, it runs after the exit handlers registered during it (they run last-in, first-out)."""
    atexit.unregister(_freeze)  # once per process, however many runs
    atexit.register(_freeze)


# Python's buffered files (exact types: an `isinstance` against io.IOBase, an ABC, costs ~1 µs per object).
_BUFFERED = frozenset((io.TextIOWrapper, io.BufferedWriter, io.BufferedRandom, io.BufferedRWPair))


def _freeze() -> None:
    objects = gc.get_objects()
    # The files among a run's ~300,000 objects, picked without a Python-level loop (~40% of its time).
    for obj in itertools.compress(objects, map(_BUFFERED.__contains__, map(type, objects))):
        if not obj.closed:
            with contextlib.suppress(Exception):  # a broken pipe, a full disk: as at any shutdown
                if obj.writable():
                    obj.flush()
    del objects
    gc.freeze()
