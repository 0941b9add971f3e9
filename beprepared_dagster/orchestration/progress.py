"""Progress within a long stage: images done / total, rate and ETA, logged every few seconds (to the Dagster
run log, and to whoever else listens, e.g. the headless runner's progress bar)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

INTERVAL = 5.0  # seconds between progress lines


class StageProgress:
    """Counts images done in one stage. `advance(n)` after each stored batch; a line is logged at most every
    `interval` seconds (and once at the end when the stage took longer than that)."""

    def __init__(
        self,
        stage: str,
        total: int,
        log: Any,
        listener: Callable[[str, int, int], None] | None = None,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stage, self.total, self.log, self.listener = stage, total, log, listener
        self.interval, self.clock = interval, clock
        self.done = 0
        self.started = self.last = clock()

    def advance(self, n: int) -> None:
        self.done += n
        if self.listener is not None:
            self.listener(self.stage, self.done, self.total)
        now = self.clock()
        if now - self.last >= self.interval and self.done < self.total:
            self.last = now
            self.log.info(self.line(now))

    def finish(self) -> None:
        now = self.clock()
        if now - self.started >= self.interval:
            self.log.info(self.line(now))

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        text = f"{self.stage}: {self.done}/{self.total} image(s)"
        if self.total:
            text += f" ({100 * self.done // self.total}%)"
        text += f", {rate:.1f} images/s"
        if 0 < self.done < self.total and rate > 0:
            text += f", ETA {_duration((self.total - self.done) / rate)}"
        return text


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
