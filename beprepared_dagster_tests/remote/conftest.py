"""Fake Chat Completions servers (one per session, reset for each test) and a test API key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from beprepared_dagster_tests.remote.fake_server import FakeServer

TEST_KEY = "sk-test-DO-NOT-LEAK-4f1c9a"


@pytest.fixture(scope="session")
def _servers() -> Iterator[list[FakeServer]]:
    servers = [FakeServer().start(), FakeServer().start()]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def server(_servers: list[FakeServer], monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    """A fake server, with $OPENAI_API_KEY set to TEST_KEY and no $OPENAI_BASE_URL."""
    for s in _servers:
        s.reset()
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return _servers[0]


@pytest.fixture
def second_server(_servers: list[FakeServer], server: FakeServer) -> FakeServer:
    return _servers[1]
