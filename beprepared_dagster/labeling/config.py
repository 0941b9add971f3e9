"""Labeling-app settings from the environment: mode, host, port, public URL and login.

| variable                     | default     | meaning                                                        |
|------------------------------|-------------|----------------------------------------------------------------|
| `BEPREPARED_LABELING`        | `auto`      | `auto`: start with Dagster's code server; `off`: never          |
| `BEPREPARED_LABELING_HOST`   | `127.0.0.1` | interface to bind (`0.0.0.0` for phones on the LAN)            |
| `BEPREPARED_LABELING_PORT`   | `7860`      | port to bind                                                   |
| `BEPREPARED_LABELING_URL`    | derived     | the URL people open (behind a proxy, or a LAN name)            |
| `BEPREPARED_LABELING_AUTH`   | none        | `user:password[,user2:pw2]`, or `@/path/to/file` (one a line)  |
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from beprepared_dagster.errors import BeprepareError

MODE_ENV = "BEPREPARED_LABELING"
HOST_ENV = "BEPREPARED_LABELING_HOST"
PORT_ENV = "BEPREPARED_LABELING_PORT"
URL_ENV = "BEPREPARED_LABELING_URL"
AUTH_ENV = "BEPREPARED_LABELING_AUTH"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860


class LabelingConfigError(BeprepareError):
    """A labeling setting in the environment is invalid."""


@dataclass(frozen=True)
class LabelingSettings:
    """Where and how the app serves. `auth` is None (no login) or a list of (user, password)."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    auth: list[tuple[str, str]] | None = None
    public_url: str | None = None

    @property
    def url(self) -> str:
        """The base URL to open in a browser (ends with '/')."""
        return public_base_url(self.host, self.port, self.public_url)


def public_base_url(host: str, port: int, public_url: str | None = None) -> str:
    if public_url:
        return public_url.rstrip("/") + "/"
    # A wildcard bind is reachable on loopback from this machine; a LAN name is the user's to configure.
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def mode() -> str:
    """`auto` or `off` (anything else is an error naming the variable)."""
    value = os.environ.get(MODE_ENV, "auto").strip().lower() or "auto"
    if value not in ("auto", "off"):
        raise LabelingConfigError(f"{MODE_ENV}={value!r}: use 'auto' or 'off'")
    return value


def port_from_env() -> int:
    raw = os.environ.get(PORT_ENV, "").strip()
    if not raw:
        return DEFAULT_PORT
    try:
        port = int(raw)
    except ValueError:
        raise LabelingConfigError(f"{PORT_ENV}={raw!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise LabelingConfigError(f"{PORT_ENV}={raw!r} is outside 0-65535")
    return port


def port_is_explicit() -> bool:
    """Whether the user chose where the app is reached (a port or a public URL): then a taken port is an
    error, not a reason to move to another one."""
    return bool(os.environ.get(PORT_ENV, "").strip() or os.environ.get(URL_ENV, "").strip())


def port_is_free(host: str, port: int) -> bool:
    """Whether `host:port` can be bound now (as a server binds it: SO_REUSEADDR, so a closed connection's
    TIME_WAIT does not count as taken). A host that cannot be bound at all raises `LabelingConfigError`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise LabelingConfigError(f"cannot bind {host}:{port}: {exc.strerror or exc}") from None
    return True


def next_free_port(host: str, start: int, tries: int = 20) -> int | None:
    """The first port from `start` (up to `tries` of them) that `host` can bind, or None."""
    for port in range(start, min(start + tries, 65536)):
        if port_is_free(host, port):
            return port
    return None


def parse_auth(value: str | None) -> list[tuple[str, str]] | None:
    """`user:pw[,user2:pw2]` or `@file` (lines `user:pw`, `#` comments) → [(user, pw)], None when empty."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise LabelingConfigError(f"{AUTH_ENV}: cannot read {path}: {exc.strerror or exc}") from None
        entries = [line.strip() for line in text.splitlines()]
        entries = [e for e in entries if e and not e.startswith("#")]
    else:
        entries = [e.strip() for e in value.split(",") if e.strip()]
    pairs = []
    for n, entry in enumerate(entries, 1):
        user, sep, password = entry.partition(":")
        if not sep or not user.strip() or not password:
            # Named by position, never quoted: a mistyped entry ("ann=secret") holds a password.
            raise LabelingConfigError(f"{AUTH_ENV}: entry {n} is not 'user:password'")
        pairs.append((user.strip(), password))
    if not pairs:
        raise LabelingConfigError(f"{AUTH_ENV} is set but names no 'user:password'")
    return pairs


def settings_from_env() -> LabelingSettings:
    """Read every labeling variable; raises `LabelingConfigError` with the variable's name when one is bad."""
    return LabelingSettings(
        host=os.environ.get(HOST_ENV, "").strip() or DEFAULT_HOST,
        port=port_from_env(),
        auth=parse_auth(os.environ.get(AUTH_ENV)),
        public_url=os.environ.get(URL_ENV, "").strip() or None,
    )
