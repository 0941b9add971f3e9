"""The model runtime with fake backends: batches handed back as they finish, a corrupt file failing alone,
out-of-memory back-off (halve, keep the smaller size, give up at 1 with a clear message), several devices as
worker processes (one failing stops all, none left alive).

Does not cover real models (test_vlm_backend.py, nodes/test_vlm_caption.py) or CUDA itself."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from beprepared_dagster.models import runtime
from beprepared_dagster.models.api import DeviceSettings, ItemError, ModelSpec, ResolvedModel, WorkItem
from beprepared_dagster.models.workers import WorkerFailed
from beprepared_dagster_tests.conftest import make_image
from beprepared_dagster_tests.e2e.dagster_dev import processes_mentioning
from beprepared_dagster_tests.models.fakes import TwoCpus

BACKEND = "beprepared_dagster_tests.models.fakes:SizeBackend"
MODEL = ResolvedModel(ModelSpec("fake/model"), Path("/nonexistent"), "abc123")


@pytest.fixture
def items(tmp_path: Path) -> list[WorkItem]:
    paths = [make_image(tmp_path / f"{i}.jpg", 40 + i, 30, seed=i) for i in range(7)]
    return [WorkItem(i, str(p), {"seed": 100 + i}) for i, p in enumerate(paths)]


def run(items, args=None, batch_size=3, layer=None, caplog=None) -> list[list[tuple[int, object]]]:
    batches: list[list[tuple[int, object]]] = []
    runtime.run_model(
        BACKEND,
        args or {},
        MODEL,
        items,
        batch_size=batch_size,
        settings=DeviceSettings(),
        log=logging.getLogger("rt"),
        on_results=batches.append,
        device_layer=layer,
    )
    return batches


def test_results_arrive_per_batch_one_per_item(items):
    batches = run(items)
    assert [len(b) for b in batches] == [3, 3, 1]
    results = dict(pair for b in batches for pair in b)
    assert sorted(results) == list(range(7))
    assert results[2].startswith("42x30 seed=102")


def test_a_corrupt_file_fails_alone_and_never_reaches_the_model(items, tmp_path, caplog):
    bad = tmp_path / "truncated.jpg"
    bad.write_bytes(Path(items[0].path).read_bytes()[:200])
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    mixed = [*items[:2], WorkItem(7, str(bad)), WorkItem(8, str(text))]
    with caplog.at_level(logging.WARNING):
        results = dict(pair for b in run(mixed, batch_size=4) for pair in b)
    assert isinstance(results[7], ItemError) and results[7].bad_image
    assert isinstance(results[8], ItemError) and "not an image" in results[8].reason
    assert isinstance(results[0], str) and isinstance(results[1], str)
    assert str(text) in caplog.text


def test_out_of_memory_halves_the_batch_and_keeps_the_smaller_size(items, caplog):
    with caplog.at_level(logging.WARNING):
        batches = run(items, {"oom_above": 2}, batch_size=8)
    assert sorted(i for b in batches for i, _ in b) == list(range(7))
    assert "out of memory at batch 8 on cpu; retrying with 4" in caplog.text
    assert "retrying with 2" in caplog.text
    assert caplog.text.count("out of memory") == 2  # the smaller size is kept for the rest


def test_out_of_memory_at_batch_one_says_the_model_does_not_fit(items):
    with pytest.raises(
        runtime.ModelDoesNotFit, match="does not fit on cpu even one image at a time.*quantize"
    ):
        run(items, {"oom_above": 0}, batch_size=2)


@pytest.mark.slow
def test_two_devices_share_one_queue_and_every_item_is_computed_once(items):
    batches = run(items, {"delay": 0.5}, batch_size=1, layer=TwoCpus)
    results = [v for b in batches for _, v in b]
    assert sorted(i for b in batches for i, _ in b) == list(range(7))
    assert len({r.split("pid=")[1] for r in results}) == 2  # both workers took batches


@pytest.mark.slow
def test_one_failing_worker_stops_all_and_leaves_no_process(items):
    started = time.monotonic()
    with pytest.raises(WorkerFailed, match="the worker on cpu failed: ValueError: boom on item 3"):
        run(items, {"crash_on": 3}, batch_size=1, layer=TwoCpus)
    assert time.monotonic() - started < 60
    assert not processes_mentioning("multiprocessing.spawn"), "a worker process was left running"
