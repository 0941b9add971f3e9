"""The app over HTTP (no browser): the display route, login refusing anonymous requests everywhere, the
health probe, `ensure_serving`, and a second server taking the port over when the first stops (what a
code-location reload does). Not covered: the client script (test_browser.py)."""

from __future__ import annotations

import json
import socket
import threading

import pytest
import requests

from beprepared_dagster.labeling import config, launcher
from beprepared_dagster.labeling.config import LabelingSettings
from beprepared_dagster.labeling.server import LabelingServer
from beprepared_dagster_tests.labeling.conftest import FILTER, Lab

AUTH = [("ann", "s3cret")]


def test_display_route_serves_by_valid_object_id_only(lab: Lab, serve) -> None:
    url = serve(lab.workflows)
    response = requests.get(f"{url}display/{lab.keys[0]}", timeout=10)
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert "immutable" in response.headers["cache-control"]
    assert response.content == lab.store.objects.read(lab.keys[0])  # small upright JPEG: served as it is
    assert requests.get(f"{url}display/{'0' * 64}", timeout=10).status_code == 404
    assert requests.get(f"{url}display/{lab.keys[0].upper()}", timeout=10).status_code == 400
    for path in [
        "display/..%2F..%2Flabels.sqlite",
        "display/%2e%2e%2fbeprepared.duckdb",
        "display/../labels.sqlite",
    ]:
        response = requests.get(url + path, timeout=10)
        assert response.status_code in (400, 404) and b"SQLite" not in response.content, path
    health = requests.get(f"{url}beprepared/health", timeout=10).json()
    assert health["app"] == "beprepared-labeling" and FILTER in health["tabs"]


def _login(url: str) -> requests.Session:
    session = requests.Session()
    response = session.post(f"{url}login", data={"username": AUTH[0][0], "password": AUTH[0][1]}, timeout=10)
    assert response.status_code == 200, response.text
    return session


def test_login_on_refuses_unauthenticated_requests(lab: Lab, serve) -> None:
    url = serve(lab.workflows, auth=AUTH)
    anonymous = requests.Session()
    assert anonymous.get(f"{url}display/{lab.keys[0]}", timeout=10).status_code == 401
    assert anonymous.get(f"{url}config", timeout=10).status_code == 401
    body = {"data": {"tab": FILTER}, "component_id": 1, "fn_name": "lab_start", "session_hash": "x"}
    assert anonymous.post(f"{url}gradio_api/component_server", json=body, timeout=10).status_code == 401
    assert anonymous.get(f"{url}beprepared/health", timeout=10).json() == {"app": "beprepared-labeling"}
    assert anonymous.get(f"{url}openapi.json", timeout=10).status_code == 404
    page = anonymous.get(url, timeout=10).text
    assert "lab_start" not in page and "labeler" not in page  # the login form, not the app
    wrong = requests.post(f"{url}login", data={"username": "ann", "password": "nope"}, timeout=10)
    assert wrong.status_code == 400

    session = _login(url)
    assert session.get(f"{url}display/{lab.keys[0]}", timeout=10).status_code == 200
    config_body = session.get(f"{url}config", timeout=10).json()
    html = next(c for c in config_body["components"] if c.get("props", {}).get("elem_id") == "bp-labeler")
    body["component_id"] = html["id"]
    answer = session.post(f"{url}gradio_api/component_server", json=body, timeout=10).json()
    assert answer["ok"] and len(answer["items"]) == 12
    record = {
        **body,
        "fn_name": "lab_record",
        "data": {"writes": [{"rid": "r" * 16, "tab": FILTER, "id": lab.keys[0], "value": {"keep": True}}]},
    }
    assert session.post(f"{url}gradio_api/component_server", json=record, timeout=10).json()["ok"]
    assert lab.journal()[0]["labeler"] == "ann"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_second_server_takes_the_port_over_when_the_first_stops(lab: Lab) -> None:
    port = _free_port()
    first = LabelingServer(lab.workflows, LabelingSettings(port=port)).start()
    second = LabelingServer(lab.workflows[:1], LabelingSettings(port=port), retry_seconds=0.1)
    try:
        assert first.wait_ready(60)
        second.start()
        assert not second.wait_ready(2)  # the port is taken: it waits, it does not pick another
        assert len(requests.get(f"http://127.0.0.1:{port}/beprepared/health", timeout=5).json()["tabs"]) == 3
        first.stop()
        assert second.wait_ready(30)
        assert requests.get(f"http://127.0.0.1:{port}/beprepared/health", timeout=5).json()["tabs"] == [
            FILTER
        ]
    finally:
        first.stop()
        second.stop()


def test_ensure_serving_reuses_an_app_already_on_the_port(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    port = _free_port()
    monkeypatch.setenv(config.PORT_ENV, str(port))
    monkeypatch.delenv(config.AUTH_ENV, raising=False)
    monkeypatch.setattr(launcher, "_running", None)
    started = launcher.ensure_serving(lab.workflows)
    try:
        assert started is not None and started.ready.is_set()
        monkeypatch.setattr(launcher, "_running", None)  # as if another process asked
        assert launcher.ensure_serving(lab.workflows) is None
        assert launcher.probe(config.settings_from_env()) == sorted(
            ["pick/human_filter", "tagging/human_tag", "captions/human_caption"]
        )
    finally:
        started.stop()


def test_a_page_on_another_site_cannot_write_labels(lab: Lab, serve) -> None:
    """CSRF: Gradio takes a `text/plain` body as JSON, so a form or fetch on any site the labeler visits
    needs no preflight; the app refuses unsafe requests a browser marks (or an Origin shows) as cross-site."""
    url = serve(lab.workflows)
    config_body = requests.get(f"{url}config", timeout=10).json()
    html = next(c for c in config_body["components"] if c.get("props", {}).get("elem_id") == "bp-labeler")

    def record(rid: str, headers: dict[str, str]) -> requests.Response:
        body = {
            "data": {"writes": [{"rid": rid, "tab": FILTER, "id": lab.keys[0], "value": {"keep": False}}]},
            "component_id": html["id"],
            "fn_name": "lab_record",
            "session_hash": "x",
        }
        return requests.post(
            f"{url}gradio_api/component_server",
            data=json.dumps(body),
            headers={"Content-Type": "text/plain", **headers},
            timeout=10,
        )

    evil = "https://evil.example"
    assert record("a" * 16, {"Origin": evil, "Sec-Fetch-Site": "cross-site"}).status_code == 403
    other_port = "http://127.0.0.1:1"  # same site, another origin (any local server)
    assert record("f" * 16, {"Origin": other_port, "Sec-Fetch-Site": "same-site"}).status_code == 403
    assert record("b" * 16, {"Origin": evil}).status_code == 403  # a browser without Sec-Fetch-* (plain http)
    assert record("c" * 16, {"Origin": "null"}).status_code == 403  # a sandboxed frame or a file:// page
    assert lab.journal() == []
    same = url.rstrip("/")
    assert record("d" * 16, {"Origin": same, "Sec-Fetch-Site": "same-origin"}).json()["ok"]
    assert record("e" * 16, {"Origin": same}).json()["ok"]
    assert [r["request_id"] for r in lab.journal()] == ["d" * 16, "e" * 16]


def test_a_host_not_on_this_machine_fails_at_once_instead_of_waiting_for_ever(lab: Lab) -> None:
    """Only a port in use is worth waiting for; a bind error that never clears must say so, not pose as
    'in use' and keep the app down in silence."""
    server = LabelingServer(lab.workflows, LabelingSettings(host="203.0.113.1", port=0), retry_seconds=0.05)
    outcome: dict[str, object] = {}

    def bind() -> None:
        try:
            outcome["sock"] = server._bind()
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=bind, daemon=True)
    thread.start()
    thread.join(5)
    server.stop(timeout=0)  # ends a retry loop (what it did before: retried for ever)
    thread.join(5)
    if outcome.get("sock") is not None:
        outcome["sock"].close()  # type: ignore[attr-defined]
        pytest.skip("this machine binds addresses it does not have (ip_nonlocal_bind)")
    error = outcome.get("error")
    assert isinstance(error, config.LabelingConfigError) and "203.0.113.1" in str(error), outcome


def test_a_stop_between_bind_and_serve_ends_the_thread_and_frees_the_port(lab: Lab) -> None:
    class StoppedRightAfterBinding(LabelingServer):
        def _bind(self):  # type: ignore[no-untyped-def]
            sock = super()._bind()
            self.stop(timeout=0)  # as a stop() from another thread landing here would
            return sock

    server = StoppedRightAfterBinding(lab.workflows, LabelingSettings(port=0)).start()
    try:
        server._thread.join(30)  # type: ignore[union-attr]
        assert not server._thread.is_alive() and server.error is None  # type: ignore[union-attr]
        with socket.socket() as probe:  # no listening socket left behind
            probe.bind(("127.0.0.1", server.port))
    finally:
        if server._server is not None:
            server._server.should_exit = True
