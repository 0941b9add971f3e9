"""Terminal output for the `beprepared` command and `python flow.py`: colour only on a terminal (never when
piped, never with `NO_COLOR` set, see https://no-color.org), a progress bar on stderr that redraws in place
on a terminal and prints an occasional plain line when piped, and a script's one-line errors and stops."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from beprepared_dagster.errors import BeprepareError

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
        self._segment: tuple[str, int] | None = None  # (label, total) the rate is measured over
        self._segment_start = (0.0, 0)  # (time, done) when it began

    def __enter__(self) -> Progress:
        global _ACTIVE
        _ACTIVE = self
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, done: int, total: int, label: str = "") -> None:
        """Show `done` of `total` units finished, working on `label` (with the rate and time left once
        the same label and total have been updated for a while)."""
        label = f"{label} {self._rate(done, total, label)}".strip()
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

    def _rate(self, done: int, total: int, label: str) -> str:
        now = time.monotonic()
        if self._segment != (label, total) or done < self._segment_start[1]:
            self._segment, self._segment_start = (label, total), (now, done)
            return ""
        began, first = self._segment_start
        elapsed, count = now - began, done - first
        if elapsed < 1.0 or count <= 0:
            return ""
        rate = count / elapsed
        text = f"{rate:.1f}/s" if rate < 10 else f"{rate:.0f}/s"
        return text + (f", {_duration((total - done) / rate)} left" if done < total else "")

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


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


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


def configure_logging(verbose: bool = False) -> None:
    """Log lines on stderr through `ConsoleHandler`: beprepared's own from INFO, other libraries' (Dagster's
    included) from WARNING, or from INFO with `verbose`."""
    handler = ConsoleHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("beprepared").setLevel(logging.INFO)


def stopped(message: str) -> None:
    """Print the line that says a run was stopped (Ctrl-C) on stderr."""
    style = Style(sys.stderr)
    print(style(message or "stopped", "yellow"), file=sys.stderr)


def called_as_script() -> bool:
    """Whether the code that called into beprepared is a script's top level (`python flow.py`,
    `python -m pkg.flow`), not a function (which may want the exception), a test or an interactive
    session."""
    if hasattr(sys, "ps1") or sys.flags.interactive:
        return False
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name != "beprepared_dagster" and not name.startswith("beprepared_dagster."):
            return name == "__main__" and frame.f_code.co_name == "<module>"
        frame = frame.f_back
    return False


@contextmanager
def script_session(title: str) -> Iterator[Progress]:
    """What `beprepared run` does around a run, for a script: log lines on the console (unless the script
    configured logging itself), a progress bar, and an error or a stop as one line that ends the script
    with exit status 1 or 130 instead of a traceback."""
    if not logging.getLogger().handlers:
        configure_logging()
    try:
        with Progress(title) as bar:
            yield bar
    except BeprepareError as exc:
        error(str(exc))
        raise SystemExit(1) from None
    except KeyboardInterrupt as exc:
        stopped(str(exc) or "stopped")
        raise SystemExit(130) from None


def print_summary(workflow: Any, summary: Any) -> None:
    """What a headless run did, on stdout: new images, runs, and each stage's counts (or its export)."""
    from beprepared_dagster.nodes.base import SinkNode
    from beprepared_dagster.store import stages
    from beprepared_dagster.store.workspace import WorkspaceStore

    style = Style(sys.stdout)
    state = style("waiting for labels", "yellow") if summary.waiting else style("done", "green")
    print(
        f"{style(workflow.name, 'bold')}: {summary.new_images} new image(s), "
        f"{len(summary.runs)} stage run(s), {state}"
    )
    store = WorkspaceStore(workflow.workspace_dir)
    with store.db.connect() as conn:
        for stage in workflow.stages:
            if isinstance(stage.node, SinkNode):
                target = store.resolve_output(stage.node.params.get("dir"))
                print(f"  {stage.name:<24} {style('→', 'dim')} {target}")
                continue
            counts = stages.counts(conn, workflow.name, stage.name)
            empty = "no images" if not summary.images else "not run"
            shown = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or empty
            print(f"  {stage.name:<24} {shown}")
