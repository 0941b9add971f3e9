"""Terminal output for the `beprepared` command: colour only on a terminal (never when piped, never with
`NO_COLOR` set, see https://no-color.org), and a progress bar on stderr that redraws in place on a
terminal and prints an occasional plain line when piped."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from typing import TextIO

_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34", "cyan": "36"}
BAR_WIDTH = 28
PIPED_INTERVAL = 5.0  # seconds between plain progress lines when not on a terminal


def use_colour(stream: TextIO) -> bool:
    """Whether `stream` gets ANSI colour: it is a terminal and `NO_COLOR` is unset or empty."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed stream
        return False


class Style:
    """Wraps text in ANSI codes when colour is on for its stream, and returns it unchanged otherwise.

    Example: `Style(sys.stdout)("done", "green", "bold")`.
    """

    def __init__(self, stream: TextIO) -> None:
        self.enabled = use_colour(stream)

    def __call__(self, text: object, *styles: str) -> str:
        if not self.enabled or not styles or text == "":
            return str(text)
        codes = ";".join(_CODES[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"


def error(message: str) -> None:
    """Print `error: message` on stderr (red on a terminal)."""
    style = Style(sys.stderr)
    print(f"{style('error:', 'red', 'bold')} {message}", file=sys.stderr)


def warn(message: str) -> None:
    """Print `warning: message` on stderr (yellow on a terminal)."""
    style = Style(sys.stderr)
    print(f"{style('warning:', 'yellow', 'bold')} {message}", file=sys.stderr)


class Progress:
    """A progress bar for long work. `update(done, total, label)` matches the runner's `progress`
    callback; call `close()` (or use it as a context manager) when the work ends.

    On a terminal the bar redraws on one line with `\\r`; piped, it prints a plain line at the start, at
    most every `PIPED_INTERVAL` seconds, and at the end, so logs stay short.
    """

    def __init__(self, title: str, stream: TextIO | None = None) -> None:
        self.title = title
        self.stream = stream if stream is not None else sys.stderr
        self.live = _is_tty(self.stream)
        self.style = Style(self.stream)
        utf8 = (getattr(self.stream, "encoding", None) or "").lower().replace("-", "") == "utf8"
        self._cells = ("█", "░") if utf8 else ("#", "-")
        self._last_print = 0.0
        self._drawn = 0
        self._last_state: tuple | None = None

    def __enter__(self) -> Progress:
        global _ACTIVE
        _ACTIVE = self
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, done: int, total: int, label: str = "") -> None:
        """Show `done` of `total` units finished, working on `label`."""
        if self.live:
            self._redraw(done, total, label)
            return
        now = time.monotonic()
        first = self._last_state is None
        if first or done >= total or now - self._last_print >= PIPED_INTERVAL:
            self.stream.write(f"{self.title}: {done}/{total} {label}".rstrip() + "\n")
            self.stream.flush()
            self._last_print = now
        self._last_state = (done, total)

    def close(self) -> None:
        """End the bar's line (on a terminal)."""
        global _ACTIVE
        if _ACTIVE is self:
            _ACTIVE = None
        if self.live and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = 0

    def _clear(self) -> None:
        if self.live and self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self._drawn = 0

    def _redraw(self, done: int, total: int, label: str) -> None:
        fraction = min(max(done / total, 0.0), 1.0) if total else 1.0
        filled = int(round(fraction * BAR_WIDTH))
        full, empty = self._cells
        # Cut the label so the line never wraps (a wrapped line cannot be redrawn with \r).
        room = shutil.get_terminal_size((100, 20)).columns - 1
        head = f"{self.title} {full * filled}{empty * (BAR_WIDTH - filled)} {done}/{total} "
        tail = label[: max(room - len(head), 0)]
        bar = self.style(full * filled, "green") + self.style(empty * (BAR_WIDTH - filled), "dim")
        # Spaces, not an erase-line escape, so NO_COLOR output holds no escape codes at all.
        pad = " " * max(self._drawn - len(head) - len(tail), 0)
        self.stream.write(f"\r{self.title} {bar} {done}/{total} {tail}{pad}")
        self.stream.flush()
        self._drawn = len(head) + len(tail)
        self._last_state = (done, total, label)  # type: ignore[assignment]


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


_ACTIVE: Progress | None = None
_LEVEL_STYLES = {
    logging.WARNING: ("yellow",),
    logging.ERROR: ("red", "bold"),
    logging.CRITICAL: ("red", "bold"),
}


class ConsoleHandler(logging.Handler):
    """Log lines on stderr that do not collide with a live progress bar: the bar is cleared, the line
    printed, and the bar drawn again. Warnings and errors are coloured on a terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream if stream is not None else sys.stderr
        self.style = Style(self.stream)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            if record.levelno >= logging.WARNING:
                styles = _LEVEL_STYLES.get(record.levelno, ("yellow",))
                text = f"{self.style(record.levelname.lower() + ':', *styles)} {text}"
            bar = _ACTIVE if _ACTIVE is not None and _ACTIVE.stream is self.stream else None
            if bar is not None:
                bar._clear()
            self.stream.write(text + "\n")
            if bar is not None and bar.live and bar._last_state:
                bar._redraw(*bar._last_state)
            self.stream.flush()
        except Exception:
            self.handleError(record)
