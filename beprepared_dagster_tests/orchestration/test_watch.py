"""The discovery sensor scans a Load folder when files change in it (watchdog events), not on a 30 s clock:
`orchestration/watch.py` on a real folder, and the sensor evaluated as the daemon does.

Not covered here: the latency under `dagster dev` from files landing to the stages done (not measured yet)."""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pytest

from beprepared_dagster import FilterBySize, Load, Save, Workflow
from beprepared_dagster.orchestration import watch
from beprepared_dagster.orchestration.defs import build_definitions
from beprepared_dagster.orchestration.instance import open_instance
from beprepared_dagster.store import WorkspaceStore
from beprepared_dagster_tests.conftest import make_images


def wait_for(predicate, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


def test_a_watched_folder_is_due_once_files_land_and_settle(tmp_path: Path):
    folder = tmp_path / "photos"
    folder.mkdir()
    watcher = watch.Watcher()
    assert watcher.due([folder], None) == "first scan"
    watcher.scanned([folder])
    last = time.time()
    make_images(folder, 1)  # lands between the first scan and the next tick: seen (watching began with it)
    assert wait_for(lambda: watcher.due([folder], last)) == "files changed"
    watcher.scanned([folder])
    assert watcher.due([folder], last) is None  # nothing happened since
    make_images(folder, 2, start=5)
    assert wait_for(lambda: watcher.due([folder], last)) == "files changed"
    watcher.scanned([folder])
    assert watcher.due([folder], last) is None
    assert watcher.due([folder], last - watch.RESCAN_SECONDS - 1) == "periodic rescan"


def test_without_events_the_folder_is_scanned_on_the_fallback_clock(tmp_path: Path, monkeypatch):
    folder = tmp_path / "photos"
    folder.mkdir()
    watcher = watch.Watcher()
    monkeypatch.setattr(watcher, "watch", lambda f: False)  # no watchdog, or inotify watches exhausted
    now = time.time()
    assert watcher.due([folder], now - 5, now=now) is None
    assert watcher.due([folder], now - watch.FALLBACK_SECONDS, now=now) == "periodic scan"


@pytest.mark.slow
def test_the_discovery_sensor_skips_quiet_ticks_and_picks_up_new_files(tmp_path: Path):
    photos, ws = tmp_path / "photos", tmp_path / "ws"
    make_images(photos, 2, 96, 64)
    workflow = Workflow("watched", Load(photos) >> FilterBySize(min_edge=32) >> Save, workspace=ws)
    instance = open_instance(WorkspaceStore(ws))
    sensor = build_definitions([workflow]).get_sensor_def("watched_discover_images")

    def tick(cursor: str | None):
        context = dg.build_sensor_context(instance=instance, cursor=cursor)
        result = sensor(context)
        return result, context.cursor

    first, cursor = tick(None)
    assert len(first.dynamic_partitions_requests[0].partition_keys) == 2
    instance.add_dynamic_partitions("watched_images", first.dynamic_partitions_requests[0].partition_keys)
    quiet, cursor_after = tick(cursor)
    assert isinstance(quiet, dg.SkipReason) and "no file changed" in quiet.skip_message
    assert cursor_after == cursor
    make_images(photos, 3, 96, 64, start=10)

    def scanned():
        result = tick(cursor)[0]
        return None if isinstance(result, dg.SkipReason) else result

    found = wait_for(scanned)  # ticks skip until the new files have been quiet for a moment
    assert found is not None
    assert len(found.dynamic_partitions_requests[0].partition_keys) == 3
