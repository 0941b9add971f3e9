"""File-system events for the discovery sensor: scan a Load folder when something changed in it, not every
30 seconds.

A `watchdog` observer (inotify on Linux, FSEvents on macOS, ReadDirectoryChangesW on Windows) runs in the
process that evaluates sensors (the code server under `dagster dev`) and records, per watched folder, when it
last saw an event. The sensor ticks every few seconds and scans only when a folder changed and has been quiet
for `QUIET_SECONDS` (a copy in progress is not hashed half-written), or at the latest `MAX_WAIT_SECONDS` after
the first event of a burst. The periodic scan stays as the fallback: where no observer can start (no
`watchdog`, inotify watches exhausted, a network file system that sends no events), or every
`RESCAN_SECONDS` anyway (events can be lost; a scan of unchanged files costs one stat each).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

QUIET_SECONDS = 1.0
MAX_WAIT_SECONDS = 8.0
RESCAN_SECONDS = 300.0
FALLBACK_SECONDS = 30.0


@dataclass
class _Folder:
    first_event: float | None = None  # first event since the last scan (monotonic)
    last_event: float | None = None
    watched: bool = False
    error: str | None = None


@dataclass
class Watcher:
    """Folder → event times; thread-safe. One per process (`watcher()`)."""

    folders: dict[str, _Folder] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    observer: Any = None

    def watch(self, folder: Path) -> bool:
        """Start watching `folder` (recursively); False when no observer can watch it."""
        key = str(folder)
        with self.lock:
            state = self.folders.setdefault(key, _Folder())
            if state.watched or state.error:
                return state.watched
            try:
                from watchdog.events import FileSystemEventHandler
                from watchdog.observers import Observer

                if self.observer is None:
                    self.observer = Observer()
                    self.observer.daemon = True
                    self.observer.start()
                outer = self

                class Handler(FileSystemEventHandler):
                    def on_any_event(self, event: Any) -> None:
                        if event.event_type not in ("opened", "closed_no_write"):
                            outer.touch(key)

                self.observer.schedule(Handler(), key, recursive=True)
                state.watched = True
            except Exception as exc:  # no watchdog, inotify limits, a folder that vanished…
                state.error = f"{type(exc).__name__}: {exc}"
                log.info(f"not watching {key} for changes ({state.error}); scanning it periodically")
            return state.watched

    def touch(self, key: str) -> None:
        now = time.monotonic()
        with self.lock:
            state = self.folders.setdefault(key, _Folder())
            state.first_event = state.first_event or now
            state.last_event = now

    def due(self, folders: list[Path], last_scan: float | None, now: float | None = None) -> str | None:
        """Why the folders should be scanned now (a reason to log), or None to skip this tick.

        `last_scan` is the wall-clock time of the previous scan (None: never, in this process or any)."""
        now_wall = time.time() if now is None else now
        mono = time.monotonic()
        watched = all([self.watch(f) for f in folders])  # started before a first scan: nothing is missed
        if last_scan is None:
            return "first scan"
        if not watched:
            return "periodic scan" if now_wall - last_scan >= FALLBACK_SECONDS else None
        if now_wall - last_scan >= RESCAN_SECONDS:
            return "periodic rescan"
        with self.lock:
            states = [self.folders[str(f)] for f in folders]
            pending = [s for s in states if s.first_event is not None]
            if not pending:
                return None
            quiet = all(mono - (s.last_event or 0) >= QUIET_SECONDS for s in pending)
            waited = any(mono - (s.first_event or mono) >= MAX_WAIT_SECONDS for s in pending)
            return "files changed" if quiet or waited else None

    def scanned(self, folders: list[Path]) -> None:
        """Forget the events seen up to now for these folders (their scan is about to start)."""
        with self.lock:
            for folder in folders:
                state = self.folders.get(str(folder))
                if state is not None:
                    state.first_event = state.last_event = None


_WATCHER: Watcher | None = None
_WATCHER_LOCK = threading.Lock()


def watcher() -> Watcher:
    global _WATCHER
    with _WATCHER_LOCK:
        if _WATCHER is None:
            _WATCHER = Watcher()
        return _WATCHER
