"""The `beprepared` command through the real console script in a subprocess: exit codes, `--help` of every
command, `run`/`exec` producing the export, `db list/clear/import`, colour only on a terminal (a pty),
none when piped or with NO_COLOR, and the progress bar.

Not covered: `dev` beyond its help (test_cli_dev.py, and the e2e suite), waiting for labels at a human stage
(the runner's tests), Windows consoles.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster_tests.conftest import make_images
from beprepared_dagster_tests.store.test_legacy import make_original_workspace

BEPREPARED = shutil.which("beprepared", path=os.path.dirname(sys.executable)) or "beprepared"
ANSI = re.compile(r"\x1b\[")


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("BEPREPARED_WORKSPACE", "NO_COLOR")}
    return {**base, **extra}


def cli(*args: str, stdin: str | None = None, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BEPREPARED, *args], input=stdin, capture_output=True, text=True, timeout=300, env=env(**extra)
    )


def cli_tty(*args: str, answer: str | None = None, **extra: str) -> tuple[int, str]:
    """Run with stdin, stdout and stderr on a pseudo-terminal; type `answer` when it asks."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([BEPREPARED, *args], stdin=slave, stdout=slave, stderr=slave, env=env(**extra))
    os.close(slave)
    output, deadline = b"", time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if answer is not None and b"Type 'yes'" in output:
                os.write(master, answer.encode() + b"\n")
                answer = None
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=30), output.decode(errors="replace")


def no_ansi(done: subprocess.CompletedProcess) -> bool:
    return not ANSI.search(done.stdout) and not ANSI.search(done.stderr)


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    make_images(tmp_path / "photos", 3, 64, 48)
    make_images(tmp_path / "photos", 1, 16, 12, start=10)
    script = tmp_path / "flow.py"
    script.write_text(
        "from beprepared_dagster import *\n"
        f"Load({str(tmp_path / 'photos')!r}) >> FilterBySize(min_edge=32) >> SetCaption('a photo') >> Save\n"
    )
    return script


@pytest.mark.parametrize(
    "command",
    [[], ["run"], ["exec"], ["db"], ["db", "list"], ["db", "clear"], ["db", "import"], ["dev"], ["warm"]],
    ids=lambda c: " ".join(c) or "beprepared",
)
def test_every_command_has_help(command):
    done = cli(*command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: beprepared") and no_ansi(done)
    assert "-w DIR" in done.stdout
    if command and command != ["db"]:
        assert "example" in done.stdout


def test_version_usage_errors_and_missing_workspace(tmp_path):
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("beprepared-dagster ")
    bare = cli()
    assert bare.returncode == 1 and "usage: beprepared" in bare.stderr
    assert cli("db").returncode == 1
    assert cli("frobnicate").returncode == 2
    assert cli("db", "list", "--no-such-flag").returncode == 2
    missing = cli("-w", str(tmp_path / "nothing"), "db", "list")
    assert missing.returncode == 1 and "error: no workspace at" in missing.stderr
    assert not (tmp_path / "nothing").exists()  # looking does not create one


@pytest.mark.slow
def test_run_exports_then_reruns_nothing_and_db_commands_work(tmp_path, flow):
    ws = tmp_path / "ws"
    first = cli("-w", str(ws), "run", str(flow))
    assert first.returncode == 0, first.stderr[-3000:]
    assert "flow: 4 new image(s)" in first.stdout and "done" in first.stdout
    assert re.search(r"filter_by_size\s+3 kept, 1 rejected", first.stdout)
    assert "flow: " in first.stderr and no_ansi(first)  # plain progress lines when piped
    assert "flow: 4/4 load" in first.stderr  # the bar counts the images of the stage at work, not runs
    captions = sorted((ws / "output").glob("*.txt"))
    assert len(captions) == 3 and captions[0].read_text() == "a photo"
    again = cli("run", str(flow), "-w", str(ws))
    assert again.returncode == 0 and "0 new image(s), 0 stage run(s)" in again.stdout

    listed = cli("-w", str(ws), "db", "list")
    assert listed.returncode == 0 and no_ansi(listed)
    for name in ("FilterBySize", "SetCaption", "Load.probe", "min_edge=32"):
        assert name in listed.stdout
    only = cli("-w", str(ws), "db", "list", "filterby*")
    assert "FilterBySize" in only.stdout and "SetCaption" not in only.stdout

    refused = cli("-w", str(ws), "db", "clear", "FilterBySize", stdin="yes\n")
    assert refused.returncode == 1 and "not a terminal" in refused.stderr and "pass -f" in refused.stderr
    assert "FilterBySize" in cli("-w", str(ws), "db", "list").stdout
    cleared = cli("-w", str(ws), "db", "clear", "FilterBySize", "-f")
    assert cleared.returncode == 0 and re.search(
        r"removed \d+ cached result\(s\); 4 stage row\(s\) will be recomputed", cleared.stdout
    )
    assert "FilterBySize" not in cli("-w", str(ws), "db", "list").stdout
    rerun = cli("-w", str(ws), "run", str(flow))
    assert rerun.returncode == 0 and "0 stage run(s)" not in rerun.stdout
    assert "FilterBySize" in cli("-w", str(ws), "db", "list").stdout


@pytest.mark.slow
def test_exec_and_a_failing_workflow(tmp_path):
    make_images(tmp_path / "raw", 2)
    ws = tmp_path / "ws"
    done = cli("-w", str(ws), "exec", f"Load({str(tmp_path / 'raw')!r}) >> Save('out')")
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list((ws / "out").glob("*.jpg"))) == 2
    bad = tmp_path / "bad.py"
    bad.write_text(f"from beprepared_dagster import *\nLoad({str(tmp_path / 'absent')!r}) >> Save\n")
    failed = cli("-w", str(ws), "run", str(bad))
    assert failed.returncode == 1 and "error:" in failed.stderr and "does not exist" in failed.stderr
    typo = cli("-w", str(ws), "exec", "Lod('x') >> Save")
    assert typo.returncode != 0 and "Lod" in typo.stderr
    missing = cli("-w", str(ws), "run", str(tmp_path / "nope.py"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr


@pytest.mark.slow
def test_run_checks_every_load_folder_before_any_workflow_runs(tmp_path):
    make_images(tmp_path / "raw", 2)
    ws = tmp_path / "ws"
    script = tmp_path / "two.py"
    script.write_text(
        "from beprepared_dagster import *\n"
        f"with Workspace({str(ws)!r}, name='good') as w:\n"
        f"    Load({str(tmp_path / 'raw')!r}) >> Save\n"
        f"with Workspace({str(ws)!r}, name='bad') as w:\n"
        f"    Load({str(tmp_path / 'absent')!r}) >> Save('other')\n"
    )
    failed = cli("run", str(script))
    assert failed.returncode == 1
    assert failed.stderr.splitlines() == [
        f"error: workflow 'bad': Load: folder {tmp_path / 'absent'} does not exist"
    ]
    assert not (ws / "output").exists() and not (ws / "dagster_home").exists()  # 'good' did not run


def test_db_clear_of_labels_asks_on_a_terminal_and_keeps_history(tmp_path):
    store = WorkspaceStore(tmp_path / "ws")
    ids = [f"{n:064x}" for n in range(3)]
    store.journal.append_many([("default", "filter", i, {"keep": True}) for i in ids])
    store.journal.append("pets", "tag", ids[0], {"tags": ["dog"], "rejected": False, "version": 1})
    code, out = cli_tty("-w", str(store.root), "db", "clear", "humanfilter", answer="no")
    assert code == 1 and "nothing removed" in out
    assert all(x.value for x in store.journal.latest("default", "filter").values())
    code, out = cli_tty("-w", str(store.root), "db", "clear", "-d", "default", answer="yes")
    assert code == 0 and "undid 3 label(s)" in out, out
    assert all(x.value is None for x in store.journal.latest("default", "filter").values())
    assert len(store.journal.since(0)) == 7  # undo entries appended, nothing deleted
    left = cli("-w", str(store.root), "db", "list")
    assert "humantag" in left.stdout and "[pets]" in left.stdout and "humanfilter" not in left.stdout
    nothing = cli("-w", str(store.root), "db", "clear", "humanfilter", "-f")
    assert nothing.returncode == 0 and "nothing stored matches" in nothing.stdout


def test_colour_only_on_a_terminal_and_never_with_no_color(tmp_path):
    store = WorkspaceStore(tmp_path / "ws")
    store.journal.append("default", "filter", "a" * 64, {"keep": False})
    code, out = cli_tty("-w", str(store.root), "db", "list")
    assert code == 0 and ANSI.search(out) and "humanfilter" in out
    code, out = cli_tty("-w", str(store.root), "db", "list", NO_COLOR="1")
    assert code == 0 and not ANSI.search(out) and "humanfilter" in out
    piped = cli("-w", str(store.root), "db", "list")
    assert piped.returncode == 0 and no_ansi(piped) and "0 kept, 1 rejected" in piped.stdout


def test_db_import_of_an_original_workspace(tmp_path):
    marker = tmp_path / "pwned"
    ids = make_original_workspace(tmp_path / "old", marker)
    ws = tmp_path / "ws"
    first = cli("-w", str(ws), "db", "import", str(tmp_path / "old"), str(tmp_path / "absent"))
    assert first.returncode == 1 and "absent does not exist" in first.stderr
    assert "original beprepared" in first.stdout and no_ansi(first)
    assert "1 copied" in first.stdout and "8 imported" in first.stdout
    assert "unsafe pickle (GLOBAL" in first.stdout and "unsafe pickle (STACK_GLOBAL" in first.stdout
    assert "computed result with no counterpart here (clip_embedding)" in first.stdout
    assert not marker.exists()
    store = WorkspaceStore(ws)
    assert store.objects.has(ids["a"])
    assert store.journal.latest("tags", "tag")[ids["a"]].value["tags"] == ["dog", "cat"]
    again = cli("-w", str(ws), "db", "import", str(tmp_path / "old"))
    assert again.returncode == 0 and "0 imported, 8 already here" in again.stdout
    assert "0 copied, 1 already here" in again.stdout
    tags = cli(
        "-w",
        str(tmp_path / "ws2"),
        "db",
        "import",
        str(tmp_path / "old"),
        "--pattern",
        "HumanTag*",
        "-d",
        "tags",
    )
    assert tags.returncode == 0 and "2 imported" in tags.stdout
    assert [e.kind for e in _labels(tmp_path / "ws2")] == ["tag"]
    assert not marker.exists()


def _labels(root: Path) -> list:
    from beprepared_dagster.store import admin

    return admin.list_labels(WorkspaceStore(root))


@pytest.mark.slow
def test_progress_bar_redraws_on_a_terminal(tmp_path, flow):
    code, out = cli_tty("-w", str(tmp_path / "ws"), "run", str(flow))
    assert code == 0, out[-3000:]
    assert "\r" in out.replace("\r\n", "") and "flow " in out and ANSI.search(out)
    code, out = cli_tty("-w", str(tmp_path / "ws2"), "run", str(flow), NO_COLOR="1")
    assert code == 0 and not ANSI.search(out) and "\r" in out.replace("\r\n", "")
