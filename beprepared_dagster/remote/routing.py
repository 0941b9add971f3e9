"""The servers of one stage run: each request goes to the server with the fewest requests in flight, and a
server that fails several times in a row is rested (sent nothing) for a while, as long as another one is up.

Used from one event loop only, so it needs no locks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from beprepared_dagster.remote.settings import display_url


@dataclass
class Server:
    """One server and what it did in this run."""

    url: str
    client: Any = None
    in_flight: int = 0
    requests: int = 0
    successes: int = 0
    failures: int = 0
    failures_in_a_row: int = 0
    rested_until: float = 0.0
    times_rested: int = 0
    last_error: str = ""

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"requests": self.requests, "ok": self.successes, "failed": self.failures}
        if self.times_rested:
            out["rested"] = self.times_rested
        if self.last_error and self.failures:
            out["last_error"] = self.last_error[:200]
        return out


class ServerPool:
    """Least-in-flight routing with resting. `pick()` before a request, `done()` after it."""

    def __init__(
        self,
        servers: list[Server],
        rest_after: int,
        rest_seconds: float,
        log: Any,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.servers, self.rest_after, self.rest_seconds = servers, rest_after, rest_seconds
        self.log, self.clock = log, clock

    def pick(self) -> Server:
        now = self.clock()
        awake = [s for s in self.servers if s.rested_until <= now] or self.servers
        server = min(awake, key=lambda s: (s.in_flight, s.requests))
        server.in_flight += 1
        server.requests += 1
        return server

    def done(self, server: Server, ok: bool, error: str = "") -> None:
        """Record an attempt's end. `ok=False` only for failures that say the server is unwell (connection,
        timeout, 429, 5xx, a malformed answer), not for a request the server rejected on its merits."""
        server.in_flight -= 1
        if ok:
            server.successes += 1
            server.failures_in_a_row = 0
            return
        server.failures += 1
        server.failures_in_a_row += 1
        server.last_error = error
        if server.failures_in_a_row >= self.rest_after and self._another_is_up(server):
            now = self.clock()
            if server.rested_until <= now:
                server.rested_until = now + self.rest_seconds
                server.times_rested += 1
                self.log.warning(
                    f"server {display_url(server.url)} rested for {self.rest_seconds:g}s after "
                    f"{server.failures_in_a_row} failures in a row (last: {error[:200]})"
                )

    def _another_is_up(self, server: Server) -> bool:
        now = self.clock()
        return any(s is not server and s.rested_until <= now for s in self.servers)

    @property
    def any_success(self) -> bool:
        return any(s.successes for s in self.servers)

    def summary(self) -> dict[str, dict[str, Any]]:
        return {display_url(s.url): s.summary() for s in self.servers}
