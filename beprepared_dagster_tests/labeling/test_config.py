"""Settings from the environment, tab URLs, and where the launcher starts the app (pure logic; the real
`dagster dev` launch is in test_dagster_dev_launch.py)."""

from __future__ import annotations

import sys

import pytest

from beprepared_dagster.labeling import config, launcher
from beprepared_dagster.labeling.urls import tab_url


def test_defaults_bind_loopback_on_7860(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (config.HOST_ENV, config.PORT_ENV, config.URL_ENV, config.AUTH_ENV, config.MODE_ENV):
        monkeypatch.delenv(name, raising=False)
    settings = config.settings_from_env()
    assert (settings.host, settings.port, settings.auth) == ("127.0.0.1", 7860, None)
    assert config.mode() == "auto"
    assert tab_url("dogs", "human_filter") == "http://127.0.0.1:7860/?tab=dogs/human_filter"


def test_tab_url_follows_host_port_and_public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.HOST_ENV, "0.0.0.0")
    monkeypatch.setenv(config.PORT_ENV, "8123")
    assert tab_url("dogs", "tag") == "http://127.0.0.1:8123/?tab=dogs/tag"  # a wildcard bind: loopback link
    monkeypatch.setenv(config.URL_ENV, "https://label.example.org/")
    assert tab_url("dogs", "tag") == "https://label.example.org/?tab=dogs/tag"


def test_auth_from_list_or_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.parse_auth("ann:pw1, bob:p:w2") == [("ann", "pw1"), ("bob", "p:w2")]
    users = tmp_path / "users"
    users.write_text("# who may label\nann:secret\n\ncarl:x\n")
    assert config.parse_auth(f"@{users}") == [("ann", "secret"), ("carl", "x")]
    assert config.parse_auth("") is None
    with pytest.raises(config.LabelingConfigError, match="user:password"):
        config.parse_auth("ann")
    for mistyped in ("ann:pw1,bob=hunter2", "ann:pw1,:hunter2"):  # errors are logged: no password in them
        with pytest.raises(config.LabelingConfigError, match="entry 2") as raised:
            config.parse_auth(mistyped)
        assert "hunter2" not in str(raised.value)
    with pytest.raises(config.LabelingConfigError, match="cannot read"):
        config.parse_auth(f"@{tmp_path / 'missing'}")
    monkeypatch.setenv(config.PORT_ENV, "http")
    with pytest.raises(config.LabelingConfigError, match=config.PORT_ENV):
        config.settings_from_env()
    monkeypatch.setenv(config.MODE_ENV, "sometimes")
    with pytest.raises(config.LabelingConfigError, match=config.MODE_ENV):
        config.mode()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            [
                "/venv/lib/python3.11/site-packages/dagster/__main__.py",
                "api",
                "grpc",
                "--lazy-load-user-code",
            ],
            True,
        ),
        (["/venv/bin/dagster", "api", "grpc", "--socket", "/tmp/x"], True),
        (["/venv/bin/dagster", "api", "execute_run", "{}"], False),
        (["/venv/bin/dagster", "api", "execute_step", "{}"], False),
        (["/venv/bin/dagster", "code-server", "start"], False),
        (["/venv/bin/dagster-webserver", "-m", "x"], False),
        (["/venv/bin/pytest", "-q"], False),
    ],
)
def test_only_the_code_server_starts_the_app(argv: list[str], expected: bool) -> None:
    assert launcher.is_code_server(argv) is expected


def test_start_with_code_server_does_nothing_elsewhere(lab, monkeypatch: pytest.MonkeyPatch) -> None:
    assert launcher.start_with_code_server(lab.workflows) is None  # pytest's argv
    monkeypatch.setenv(config.MODE_ENV, "off")
    assert launcher.start_with_code_server(lab.workflows, argv=["dagster", "api", "grpc"]) is None
    monkeypatch.setenv(config.MODE_ENV, "auto")
    monkeypatch.setenv(config.PORT_ENV, "not-a-port")  # a bad setting is logged; loading definitions goes on
    assert launcher.start_with_code_server(lab.workflows, argv=["dagster", "api", "grpc"]) is None


def test_importing_definitions_does_not_import_gradio() -> None:
    import subprocess

    code = (
        "import sys, beprepared_dagster.labeling.launcher, beprepared_dagster.labeling.urls; "
        "print('gradio' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
