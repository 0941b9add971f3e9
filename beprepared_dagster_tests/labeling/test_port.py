"""A headless run's labeling app when its port is taken: never a wait on an app that cannot serve. A port
the user chose fails at once naming it; the default port moves to the next free one (and the tab URLs
follow). Not covered: the port under `dagster dev` (its code server waits for a reload's old server)."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

from beprepared_dagster.labeling import config, launcher
from beprepared_dagster.labeling.urls import tab_url
from beprepared_dagster_tests.labeling.conftest import Lab


@pytest.fixture
def taken() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


@pytest.fixture(autouse=True)
def no_app_yet(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (config.PORT_ENV, config.URL_ENV, config.AUTH_ENV, config.HOST_ENV):
        monkeypatch.delenv(name, raising=False)  # restored afterwards, even when the launcher sets one
    monkeypatch.setattr(launcher, "_running", None)
    yield
    launcher.stop()


def test_a_taken_port_the_user_chose_fails_at_once_naming_it(lab: Lab, taken, monkeypatch) -> None:
    monkeypatch.setenv(config.PORT_ENV, str(taken))
    started = time.monotonic()
    with pytest.raises(config.LabelingConfigError, match=f"port {taken} .*taken by another program.*PORT"):
        launcher.ensure_serving(lab.workflows)
    assert time.monotonic() - started < 5


def test_an_app_without_the_workflows_tabs_is_not_waited_on(lab: Lab, serve, monkeypatch) -> None:
    url = serve(lab.workflows[:1])  # serves pick/human_filter only
    monkeypatch.setenv(config.PORT_ENV, str(urlparse(url).port))
    with pytest.raises(config.LabelingConfigError, match="does not serve captions/human_caption"):
        launcher.ensure_serving(lab.workflows)


def test_a_taken_default_port_moves_to_the_next_free_one(lab: Lab, taken, monkeypatch, caplog) -> None:
    monkeypatch.setattr(config, "DEFAULT_PORT", taken)
    with caplog.at_level(logging.WARNING, logger="beprepared.labeling"):
        server = launcher.ensure_serving(lab.workflows)
    assert server is not None and server.ready.is_set() and server.port > taken
    assert f"port {taken} (127.0.0.1) is taken by another program" in caplog.text
    assert f"serves on port {server.port} instead" in caplog.text
    assert tab_url("pick", "human_filter") == f"http://127.0.0.1:{server.port}/?tab=pick/human_filter"
    assert launcher.probe(config.settings_from_env()) is not None  # the URLs printed now answer
