"""The garbage collector around headless runs: full collections put off during a run (and the caller's
thresholds back afterwards, even on an error), and the shutdown collection skipped in a process that ends
with its run, without losing what a file left open had buffered.

Not covered here: the time it saves (bench/bench_ingest.py)."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from beprepared_dagster.orchestration import gcpolicy
from beprepared_dagster.orchestration.gcpolicy import (
    FULL_COLLECTION_EVERY,
    few_full_collections,
    no_collection,
)


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    """A `no_collection` block outside any run freezes until the next run ends: not into the next test."""
    yield
    gc.unfreeze()
    gcpolicy._frozen = False


def test_full_collections_are_put_off_during_the_block_and_thresholds_come_back() -> None:
    before = gc.get_threshold()
    with few_full_collections():
        inside = gc.get_threshold()
        with few_full_collections():  # nested (Workflow.run around the runner): still raised
            assert gc.get_threshold() == inside
        assert gc.get_threshold() == inside
    assert inside[:2] == before[:2]
    assert inside[2] >= FULL_COLLECTION_EVERY
    assert gc.get_threshold() == before


def test_thresholds_come_back_after_an_error() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), few_full_collections():
        raise RuntimeError("a failed run")
    assert gc.get_threshold() == before


def test_the_collector_is_off_inside_no_collection_and_as_it_was_after() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), no_collection():
        assert not gc.isenabled()
        raise RuntimeError("an import failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with no_collection():  # a caller who turned it off keeps it off
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_headless_run_leaves_the_collector_on(tmp_path) -> None:
    """The imports and the instance's set-up run with the collector off; the caller's process gets it back."""
    from beprepared_dagster import Load, Save, Workflow
    from beprepared_dagster_tests.conftest import make_images

    make_images(tmp_path / "photos", 3)
    Workflow("gc", Load(tmp_path / "photos") >> Save, workspace=tmp_path / "ws").run()
    assert gc.isenabled() and gc.get_threshold()[2] < FULL_COLLECTION_EVERY
    assert gc.get_freeze_count() == 0  # nothing left out of the collector's reach


def test_what_the_set_up_built_is_set_aside_until_the_run_ends() -> None:
    """The first young collection after the imports no longer walks everything they made: it is frozen until
    the outermost few_full_collections ends, and then collectable again."""
    with few_full_collections():
        with few_full_collections():
            with no_collection():
                made = [[i] for i in range(1000)]
            assert gc.get_freeze_count() >= len(made)
        assert gc.get_freeze_count() >= len(made)  # the inner block ends: still set aside
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), few_full_collections(), no_collection():
        raise RuntimeError("a failed set-up")
    assert gc.get_freeze_count() == 0


SCRIPT = """
import atexit
from beprepared_dagster.orchestration.gcpolicy import no_collection_at_exit

class Noisy:
    def __del__(self):
        print("collected at shutdown")

if {hook}:
    no_collection_at_exit()
    no_collection_at_exit()  # a second run in the same process
cycle = [Noisy()]
cycle.append(cycle)  # only the cyclic collector frees it
handle = open({out!r}, "w")
handle.write("buffered, never closed")
loop = [handle]
loop.append(loop)
del cycle, handle, loop
atexit.register(lambda: print("handler ran"))
"""


def _run(tmp_path: Path, hook: bool) -> tuple[str, str]:
    out = tmp_path / f"open-at-exit-{hook}.txt"
    script = textwrap.dedent(SCRIPT.format(hook=hook, out=str(out)))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout, out.read_text()


def test_the_shutdown_collection_is_skipped_but_open_files_are_flushed(tmp_path: Path) -> None:
    stdout, written = _run(tmp_path, hook=True)
    assert "handler ran" in stdout
    assert "collected at shutdown" not in stdout  # the walk over the heap did not happen
    assert written == "buffered, never closed"


def test_without_the_hook_python_collects_at_shutdown(tmp_path: Path) -> None:
    """The control: the same script collects its cycles at exit when the hook is not installed (whether
    that flushes the file is up to the interpreter: CPython 3.11 does not)."""
    stdout, _ = _run(tmp_path, hook=False)
    assert "collected at shutdown" in stdout
