"""OpenAICaption against a genuine OpenAI-compatible server: `transformers serve` on the session's tiny random
LLaVA checkpoint, on the CPU, offline. Checks the request shape a real implementation accepts (image data URL,
max_tokens, temperature), usage counts and stored outcomes; never the text (random weights write junk).

Slow: the server takes 10–60 s to start here. Does not cover vLLM, Ollama or llama.cpp (no CPU wheels on the
package index)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from beprepared_dagster import Load, OpenAICaption, Workflow
from beprepared_dagster_tests.conftest import make_image
from beprepared_dagster_tests.remote.helpers import run_stages, stored

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def serve(tiny_llava: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("fastapi")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cli = Path(sys.executable).with_name("transformers")
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(log.parent / "hub")}
    args = [str(cli), "serve", str(tiny_llava), "--device", "cpu", "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"transformers serve did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_open_ai_caption_against_transformers_serve(serve, tiny_llava, tmp_path, workspace_dir):
    folder = tmp_path / "pictures"
    make_image(folder / "a.jpg", 64, 48, seed=1)
    make_image(folder / "b.png", 40, 30, seed=2, fmt="PNG")
    node = OpenAICaption(model=str(tiny_llava), base_url=serve, max_tokens=6, temperature=0.0, timeout=120)
    workflow = Workflow("serve", Load(folder) >> node, workspace=workspace_dir)
    report = run_stages(workflow, workspace_dir)["open_ai_caption"]
    assert report.extra["requests"] == 2 and report.extra["failures"] == 0 and report.extra["retries"] == 0
    assert report.extra["prompt_tokens"] > 0 and report.extra["completion_tokens"] > 0
    rows = stored(workflow, workspace_dir, "open_ai_caption")
    assert set(rows) == {"a.jpg", "b.png"}
    for row in rows.values():  # random weights: a caption, or an answer judged empty / refused
        assert row.props.get("caption") or row.props.get("caption_error", "").startswith("refused")
        if row.props.get("caption"):
            assert row.props["caption_model"] == str(tiny_llava)
