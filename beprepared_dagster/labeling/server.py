"""Serve the labeling app with uvicorn on a socket we bind ourselves, retrying while the port is taken.

Retrying matters on a code-location reload: Dagster starts the new code server before the old one has
exited, so the new app binds the moment the old process (and its socket) is gone — one instance at a time.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from beprepared_dagster.labeling.config import HOST_ENV, PORT_ENV, LabelingConfigError, LabelingSettings
from beprepared_dagster.workflow import Workflow

log = logging.getLogger("beprepared.labeling")


class LabelingServer:
    """The app for `workflows`, served on `settings.host:settings.port` (port 0 picks a free one)."""

    def __init__(self, workflows: list[Workflow], settings: LabelingSettings, retry_seconds: float = 0.5):
        self.workflows, self.settings, self.retry_seconds = workflows, settings, retry_seconds
        self.port = settings.port
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        from beprepared_dagster.labeling.config import public_base_url

        return public_base_url(self.settings.host, self.port, self.settings.public_url)

    def start(self) -> LabelingServer:
        """Build and serve from a daemon thread (Gradio is imported there, not in the caller)."""
        self._thread = threading.Thread(target=self._serve_logged, name="beprepared-labeling", daemon=True)
        self._thread.start()
        return self

    def wait_ready(self, timeout: float) -> bool:
        return self.ready.wait(timeout)

    def run(self) -> None:
        """Build and serve in this thread until stopped (in the main thread, Ctrl+C / SIGTERM stop it)."""
        import uvicorn

        from beprepared_dagster.labeling.app import build_app
        from beprepared_dagster.labeling.service import LabelingService

        service = LabelingService(self.workflows)
        app = build_app(service, self.settings)
        sock = self._bind()
        if sock is None:
            return
        service.start_prefetch()
        try:
            config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=3, access_log=False)
            self._server = uvicorn.Server(config)
            if self._stop.is_set():  # stop() came between the bind and now: it saw no server to tell
                return
            _on_started(self._server, self._started)
            self._server.run(sockets=[sock])
        finally:
            service.stop()
            sock.close()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _serve_logged(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # a daemon thread: the reason must reach the log
            self.error = exc
            log.exception("the labeling app stopped: %s", exc)

    def _started(self) -> None:
        self.ready.set()
        # Printed, not logged: in Dagster's code server nothing shows INFO logs of other libraries.
        print(f"beprepared labeling app: {self.url} (pid {os.getpid()})", file=sys.stderr, flush=True)

    def _bind(self) -> socket.socket | None:
        """Bind host:port, retrying while it is in use; None when stopped before it was free."""
        warned = False
        while not self._stop.is_set():
            sock = socket.socket(_family(self.settings.host), socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.settings.host, self.settings.port))
                sock.listen(128)
                self.port = sock.getsockname()[1]
                return sock
            except OSError as exc:
                sock.close()
                # Only a port in use frees up by waiting; a host not on this machine or a privileged port never.
                if exc.errno != errno.EADDRINUSE:
                    raise LabelingConfigError(
                        f"the labeling app cannot bind {self.settings.host}:{self.settings.port}: "
                        f"{exc.strerror or exc} (set {HOST_ENV} / {PORT_ENV})"
                    ) from None
                if not warned:
                    log.warning(
                        "labeling app: %s:%s is in use (%s); it starts as soon as the port is free "
                        "(another port: BEPREPARED_LABELING_PORT)",
                        self.settings.host,
                        self.settings.port,
                        exc.strerror or exc,
                    )
                    warned = True
                time.sleep(self.retry_seconds)
        return None


def _on_started(server: Any, callback: Callable[[], None]) -> None:
    """Call `callback` once uvicorn accepts connections."""
    original = server.startup

    async def startup(*args: Any, **kwargs: Any) -> None:
        await original(*args, **kwargs)
        if server.started:
            callback()

    server.startup = startup


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
