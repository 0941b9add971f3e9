"""Headless runs as real processes (`python flow.py`, `beprepared run`): two runs on one workspace (the
second waits, naming the first's pid, and computes nothing), Ctrl-C (one line, exit 130, finished batches
kept, a re-run resumes), a Dagster run waiting for a headless one, and what a script prints (tab URLs,
progress, one-line errors before any run).

Not covered: `dagster dev` itself (e2e/), a Ctrl-C while waiting for labels."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from beprepared_dagster import Load, Save, Workflow
from beprepared_dagster.orchestration import inprocess
from beprepared_dagster.orchestration.defs import build_definitions
from beprepared_dagster.orchestration.instance import open_instance
from beprepared_dagster.orchestration.partitions import partitions_name, range_tags
from beprepared_dagster.store.lock import read_holder
from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster_tests.conftest import make_images
from beprepared_dagster_tests.store.test_lock import hold

BEPREPARED = shutil.which("beprepared", path=os.path.dirname(sys.executable)) or "beprepared"

FLOW = """
import os, time
from beprepared_dagster import *
from beprepared_dagster.nodes.base import PropertyNode

class Slow(PropertyNode):
    batch_size = 2  # stored two images at a time

    def __init__(self) -> None:
        pass

    def compute(self, image):
        time.sleep(float(os.environ.get("SLOW", "0")))
        with open({marker!r}, "a") as computed:
            computed.write("x\\n")
        return {{"slow": True}}

with Workspace({ws!r}, name="procs") as workspace:
    Load({photos!r}) >> Slow() >> Save
    workspace.run()
"""


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    make_images(tmp_path / "photos", 10, 16, 12)
    script = tmp_path / "flow.py"
    marker, ws, photos = str(tmp_path / "computed.txt"), str(tmp_path / "ws"), str(tmp_path / "photos")
    script.write_text(FLOW.format(marker=marker, ws=ws, photos=photos))
    return script


def computed(flow: Path) -> int:
    marker = flow.parent / "computed.txt"
    return len(marker.read_text().splitlines()) if marker.exists() else 0


def start(command: list[str], slow: float) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "BEPREPARED_WORKSPACE"}
    # A session of its own: a signal to its group is what Ctrl-C on a terminal sends. SIGINT as Python
    # expects it: a background job of a non-interactive shell (CI) starts with it ignored.
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "SLOW": str(slow)},
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
def test_two_runs_on_one_workspace_compute_each_image_once(flow):
    first = start([sys.executable, str(flow)], slow=0.2)
    wait_for(lambda: getattr(read_holder(flow.parent / "ws"), "pid", None) == first.pid)
    second = start([sys.executable, str(flow)], slow=0.2)
    out2, err2 = second.communicate(timeout=300)
    out1, err1 = first.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, err1[-2000:] + err2[-2000:]
    assert f"is busy: pid {first.pid} (python flow.py, since " in err2 and "waiting for it" in err2
    assert "10 new image(s), 1 stage run(s), done" in out1
    assert "0 new image(s), 0 stage run(s), done" in out2  # everything cached by the time it got the lock
    assert computed(flow) == 10
    assert len(list((flow.parent / "ws" / "output").glob("*.jpg"))) == 10


@pytest.mark.slow
@pytest.mark.parametrize("how", ["python flow.py", "beprepared run"])
def test_ctrl_c_stops_with_one_line_keeps_finished_batches_and_a_rerun_resumes(flow, how):
    command = [sys.executable, str(flow)] if how == "python flow.py" else [BEPREPARED, "run", str(flow)]
    run = start(command, slow=0.4)
    wait_for(lambda: computed(flow) >= 4)  # the first batch of two is stored by now
    os.killpg(run.pid, signal.SIGINT)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 130, err[-3000:]
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) <= 6, err  # progress lines, then the one stop line
    assert lines[-1].startswith("stopped; ") and lines[-1].endswith("re-run to continue")
    assert [line for line in lines if "stopped" in line] == [lines[-1]]
    assert "(load 10, slow " in lines[-1]
    before = computed(flow)
    again = start(command, slow=0)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-3000:]
    assert computed(flow) - before <= 10 - 2  # the stored batches are not computed again
    assert len(list((flow.parent / "ws" / "output").glob("*.jpg"))) == 10


def test_a_dagster_run_waits_while_a_headless_run_holds_the_workspace(tmp_path, workspace_dir):
    make_images(tmp_path / "photos", 3, 16, 12)
    workflow = Workflow("waits", Load(tmp_path / "photos") >> Save, workspace=workspace_dir)
    workflow.run()
    store = WorkspaceStore(workspace_dir)
    instance = open_instance(store)
    keys = instance.get_dynamic_partitions(partitions_name(workflow))
    holder = hold(workspace_dir, 2.0)  # as `python flow.py` would, in another process
    started = time.monotonic()
    result = dg.materialize(  # what a `dagster dev` run worker executes for this stage
        list(build_definitions([workflow]).assets or []),
        selection=[dg.AssetKey(["waits", "load"])],
        instance=instance,
        tags=range_tags(keys[0], keys[-1]),
    )
    assert result.success and time.monotonic() - started >= 1.5
    assert holder.wait(timeout=10) == 0
    logs = [e.message for e in instance.all_logs(result.run_id) if e.message]
    assert any(f"is busy: pid {holder.pid} (holder script" in m for m in logs), logs


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_a_script_prints_tab_urls_progress_and_one_line_errors(tmp_path):
    make_images(tmp_path / "photos", 3, 16, 12)
    script = tmp_path / "label.py"
    ws = tmp_path / "ws"
    script.write_text(
        textwrap.dedent(
            f"""
            from beprepared_dagster import *
            with Workspace({str(ws)!r}, name="tabs") as workspace:
                Load({str(tmp_path / "photos")!r}) >> HumanFilter >> Save
                workspace.run(wait=False)
            """
        )
    )
    port = _free_port()
    env = {**os.environ, "BEPREPARED_LABELING_PORT": str(port)}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"3 image(s) wait for a label at http://127.0.0.1:{port}/?tab=tabs/human_filter" in done.stderr
    assert "tabs: 3/3 load" in done.stderr  # the bar, piped: images of the stage at work
    assert "tabs: 3 new image(s), 1 stage run(s), waiting for labels" in done.stdout

    missing = tmp_path / "missing.py"
    other = tmp_path / "other_ws"
    missing.write_text(script.read_text().replace("photos", "absent").replace(str(ws), str(other)))
    failed = subprocess.run([sys.executable, str(missing)], capture_output=True, text=True, timeout=300)
    assert failed.returncode == 1
    assert failed.stderr.splitlines() == [
        f"error: workflow 'tabs': Load: folder {tmp_path / 'absent'} does not exist"
    ]
    assert not (other / "dagster_home").exists()  # checked when the workflow loads, before any run


def test_a_ctrl_c_that_dagster_swallows_still_stops_the_headless_run(tmp_path, workspace_dir):
    @dg.asset
    def swallowed() -> None:
        # As when the signal lands in Dagster's bookkeeping after the last step: a handler that only notes it.
        signal.signal(signal.SIGINT, lambda *_: None)
        os.kill(os.getpid(), signal.SIGINT)

    instance = inprocess.headless_instance(WorkspaceStore(workspace_dir))
    with pytest.raises(KeyboardInterrupt):
        inprocess.execute([swallowed], [swallowed.key], instance, {}, "ERROR", failures=False)
    assert instance.get_latest_materialization_event(swallowed.key) is not None  # the run itself finished
