"""The warm runner of `beprepared run` (orchestration/warm.py, warm_server.py) through the real console
script: a first run starts one, the next runs (and failing ones) are served by it with the client's folder,
terminal and exit status, Ctrl-C reaches the command, a client that dies stops its command, stale or
foreign runners are never used, a killed runner leaves its command to finish, and runners leave when idle or
asked.

Not covered: macOS and Windows (the runner is Linux-only and turned off there), a runner that fails before
it listens (its log stays, and that key is not tried again for 10 minutes)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from beprepared_dagster.orchestration import warm
from beprepared_dagster.store.lock import read_holder
from beprepared_dagster_tests.conftest import make_images
from beprepared_dagster_tests.orchestration.test_runner_processes import BEPREPARED, FLOW, computed, wait_for
from beprepared_dagster_tests.test_cli import ANSI, cli_tty

pytestmark = pytest.mark.slow


@pytest.fixture
def warm_env(tmp_path: Path):
    """An environment with the warm runner on, its sockets in a folder of this test; runners stopped after."""
    env = {k: v for k, v in os.environ.items() if k != "BEPREPARED_WORKSPACE"}
    env.update(BEPREPARED_WARM="1", BEPREPARED_WARM_DIR=str(tmp_path / "warm"), BEPREPARED_WARM_IDLE="120")
    yield env
    for status in _status(env):
        os.kill(status["pid"], signal.SIGTERM)
    wait_for(lambda: not _status(env), timeout=30)


def _status(env: dict[str, str]) -> list[dict]:
    return warm.runners(env)


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([BEPREPARED, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def _served(env: dict[str, str]) -> int:
    return sum(s["served"] for s in _status(env))


def _start_runner(env: dict[str, str], cwd: Path) -> None:
    """Any `run`/`exec` run in its own process starts a runner for its environment."""
    done = _cli(["exec", "x = 1"], env, cwd)  # declares no workflow: fails at once, and starts one anyway
    assert done.returncode == 1 and "no workflow" in done.stderr.lower(), done.stderr
    wait_for(lambda: len(_status(env)) == 1, timeout=120)


def _ended(pid: int) -> bool:
    return _state(pid) in ("", "Z")  # gone, or not reaped yet


@pytest.fixture
def photos_flow(tmp_path: Path) -> Path:
    make_images(tmp_path / "photos", 3, 64, 48)
    (tmp_path / "flow.py").write_text(
        "from beprepared_dagster import *\n"
        "with Workspace('ws'):\n"
        "    Load('photos') >> FilterBySize(min_edge=32) >> SetCaption('a photo') >> Save\n"
    )
    return tmp_path / "flow.py"


def test_runs_after_the_first_are_served_by_the_warm_runner_in_the_callers_folder(
    tmp_path, warm_env, photos_flow
):
    first = _cli(["run", "flow.py"], warm_env, tmp_path)  # relative paths: the caller's folder
    assert first.returncode == 0, first.stderr
    assert "3 new image(s)" in first.stdout
    wait_for(lambda: len(_status(warm_env)) == 1, timeout=120)  # started once the run ended
    assert _served(warm_env) == 0

    make_images(tmp_path / "photos", 2, 80, 60, start=10)
    second = _cli(["run", "flow.py"], warm_env, tmp_path)
    assert second.returncode == 0, second.stderr
    assert _served(warm_env) == 1
    assert "2 new image(s), 1 stage run(s), done" in second.stdout  # the summary on the caller's stdout
    assert "5 kept" in second.stdout and "ws: 5 images (2 new)" in second.stderr  # its log on stderr
    assert len(list((tmp_path / "ws" / "output").glob("*.jpg"))) == 5

    failing = _cli(["run", "missing.py"], warm_env, tmp_path)
    assert failing.returncode == 1 and "missing.py does not exist" in failing.stderr
    assert failing.stdout == "" and _served(warm_env) == 2

    listed = _cli(["warm"], warm_env, tmp_path)
    assert listed.returncode == 0 and "2 command(s) served, 0 running" in listed.stdout


def test_no_runner_is_used_or_started_when_turned_off_or_for_another_environment(
    tmp_path, warm_env, photos_flow
):
    off = {**warm_env, "BEPREPARED_WARM": "0"}
    assert _cli(["run", "flow.py"], off, tmp_path).returncode == 0
    time.sleep(2)
    assert _status(warm_env) == []
    _start_runner(warm_env, tmp_path)
    other = {**warm_env, "DAGSTER_SOME_SETTING": "1"}  # read at import time: another key
    assert _cli(["run", "flow.py"], other, tmp_path).returncode == 0
    assert _served(warm_env) == 0
    wait_for(lambda: len(_status(warm_env)) == 2, timeout=120)  # that run started a runner of its own
    unrelated = {**warm_env, "SOME_OTHER_VARIABLE": "x"}  # not read at import time: same runner
    assert _cli(["run", "flow.py"], unrelated, tmp_path).returncode == 0
    assert _served(warm_env) == 1


def _slow_run(tmp_path: Path, env: dict[str, str], images: int, slow: float) -> tuple[Path, subprocess.Popen]:
    """A runner, then `beprepared run` of a workflow whose node takes `slow` s per image (two per batch), in
    a session of its own (its group gets the signals a terminal sends): the flow file and the client."""
    make_images(tmp_path / "photos", images, 16, 12)
    marker, ws, photos = str(tmp_path / "computed.txt"), str(tmp_path / "ws"), str(tmp_path / "photos")
    script = tmp_path / "flow.py"
    script.write_text(FLOW.format(marker=marker, ws=ws, photos=photos))
    _start_runner(env, tmp_path)
    run = subprocess.Popen(
        [BEPREPARED, "run", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "SLOW": str(slow)},
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as on a terminal
    )
    return script, run


@pytest.mark.parametrize("how", ["ctrl-c", "client killed"])
def test_ctrl_c_reaches_the_command_and_a_dead_client_stops_it(tmp_path, warm_env, how):
    script, run = _slow_run(tmp_path, warm_env, images=10, slow=0.4)
    wait_for(lambda: computed(script) >= 4)
    status = _status(warm_env)
    assert [s["served"] for s in status] == [1], (status, run.poll())
    runner = status[0]["pid"]
    if how == "ctrl-c":
        # Asked to stop while it serves: it takes no new command, and waits for this one to end.
        assert "asked 1 warm runner(s) to stop" in _cli(["warm", "stop"], warm_env, tmp_path).stdout
        assert _status(warm_env) == [] and computed(script) < 10
        os.killpg(run.pid, signal.SIGINT)
    else:
        run.kill()  # the runner sees the client go and interrupts its command
    out, err = run.communicate(timeout=120)  # the command wrote to the pipes it was handed
    if how == "ctrl-c":
        wait_for(lambda: _ended(runner), timeout=60)  # gone once its command ended
    else:
        wait_for(lambda: _status(warm_env)[0]["running"] == 0, timeout=60)
    lines = err.strip().splitlines()
    assert lines[-1].startswith("stopped; ") and lines[-1].endswith("re-run to continue"), err[-3000:]
    assert "Traceback" not in err
    assert run.returncode == (130 if how == "ctrl-c" else -signal.SIGKILL)
    stopped_at = computed(script)
    time.sleep(1.5)
    assert computed(script) == stopped_at < 10  # nothing goes on computing


def test_a_served_command_draws_its_progress_bar_in_colour_on_the_callers_terminal(
    tmp_path, warm_env, photos_flow
):
    extra = {k: warm_env[k] for k in ("BEPREPARED_WARM", "BEPREPARED_WARM_DIR", "BEPREPARED_WARM_IDLE")}
    _start_runner(warm_env, tmp_path)
    code, out = cli_tty("-w", str(tmp_path / "ws"), "run", str(photos_flow), **extra)
    assert code == 0, out[-3000:]
    assert _served(warm_env) == 1  # the terminal was the runner's child's
    assert "\r" in out.replace("\r\n", "") and ANSI.search(out) and "3 new image(s)" in out


def test_ctrl_z_stops_the_served_command_and_fg_resumes_it(tmp_path, warm_env):
    script, run = _slow_run(tmp_path, warm_env, images=8, slow=0.3)
    wait_for(lambda: computed(script) >= 2)
    command = read_holder(tmp_path / "ws").pid  # the runner's child holds the workspace while it computes
    assert command != run.pid
    os.killpg(run.pid, signal.SIGTSTP)  # what Ctrl-Z sends to the terminal's foreground group
    wait_for(lambda: _state(command) == "T", timeout=30)
    stopped_at = computed(script)
    time.sleep(1.5)
    assert computed(script) == stopped_at < 8 and run.poll() is None
    os.killpg(run.pid, signal.SIGCONT)  # fg / bg
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err[-3000:]
    assert computed(script) == 8 and "8 kept" in out


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return ""


def test_a_killed_runner_leaves_its_command_running_and_the_client_waits_for_it(tmp_path, warm_env):
    script, run = _slow_run(tmp_path, warm_env, images=6, slow=0.3)
    wait_for(lambda: computed(script) >= 2)
    runner = _status(warm_env)[0]["pid"]
    os.kill(runner, signal.SIGKILL)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 1
    assert err.strip().splitlines()[-1] == (
        "beprepared: the warm runner ended without reporting the command's status"
    )
    assert computed(script) == 6 and "6 kept" in out  # the command finished before the client returned
    assert len(list((tmp_path / "ws" / "output").glob("*.jpg"))) == 6


def test_runner_leaves_when_idle_and_when_asked(tmp_path, warm_env):
    quick = {**warm_env, "BEPREPARED_WARM_IDLE": "2"}
    _start_runner(quick, tmp_path)
    wait_for(lambda: not _status(quick), timeout=30)
    assert not list((tmp_path / "warm").iterdir())  # socket, lock and log removed
    _start_runner(warm_env, tmp_path)
    stopped = _cli(["warm", "stop"], warm_env, tmp_path)
    assert stopped.returncode == 0 and "asked 1 warm runner(s) to stop" in stopped.stdout
    wait_for(lambda: not _status(warm_env), timeout=30)


def test_socket_folder_must_be_private_and_the_key_follows_what_imports_read(tmp_path, monkeypatch):
    folder = tmp_path / "sockets"
    monkeypatch.setenv("BEPREPARED_WARM_DIR", str(folder))
    assert warm.runtime_dir() == folder and stat.S_IMODE(folder.stat().st_mode) == 0o700
    folder.chmod(0o755)
    assert warm.runtime_dir() is None  # others could enter it
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    monkeypatch.setenv("BEPREPARED_WARM_DIR", str(link))
    assert warm.runtime_dir() is None

    env, path = {"HOME": "/h", "PYTHONPATH": "/p"}, [str(tmp_path / "site"), *sys.path[1:]]
    (tmp_path / "site").mkdir()
    key = warm.runner_key(env, path)
    assert warm.runner_key({**env, "HOME": "/other", "BEPREPARED_WORKSPACE": "ws"}, path) == key
    assert warm.runner_key({**env, "PYTHONPATH": "/q"}, path) != key
    assert warm.runner_key({**env, "BEPREPARED_STORAGE": "copy"}, path) != key
    assert warm.runner_key(env, path[1:]) != key
    os.utime(tmp_path / "site", ns=(0, 0))  # a package installed or removed there
    assert warm.runner_key(env, path) != key
