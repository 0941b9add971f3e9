"""Python's cyclic garbage collector around a headless run.

A run keeps a lot alive for its whole length (Dagster's definitions and, in `execute_in_process`'s result,
every event of the run: tens of thousands at 5,000 images × 4 stages), so with Python's default thresholds
the full (oldest-generation) collection ran about a dozen times in a cold 5,000-image run, each one walking
every live object: ~1.2 s of a ~16 s run on the 2-core benchmark machine (bench/RESULTS-ingest.md). The
young generations still collect as usual, so short-lived cycles are freed as before; only the walk over the
long-lived heap is put off until after the run.

A process that ends with its run (a script, `beprepared run`) also skips the collection Python makes while
shutting down (another ~0.35 s there): nothing it would free matters once the process exits. Files and
connections are closed by their owners, not by that collection.
"""

from __future__ import annotations

import atexit
import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Young (generation 1) collections between two full ones while a run works; Python's default is 10.
FULL_COLLECTION_EVERY = 1000


@contextmanager
def few_full_collections() -> Iterator[None]:
    """Run the body with full collections put off (see above); the caller's thresholds come back after."""
    threshold = gc.get_threshold()
    gc.set_threshold(threshold[0], threshold[1], max(threshold[2], FULL_COLLECTION_EVERY))
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


def no_collection_at_exit() -> None:
    """For a process that ends after its run: at exit, move every object out of the collector's reach
    (`gc.freeze`), so that the interpreter's shutdown does not walk the whole heap once more. Registered
    before the run, it runs after the exit handlers registered during it (they run last-in, first-out)."""
    atexit.unregister(gc.freeze)  # once per process, however many runs
    atexit.register(gc.freeze)
