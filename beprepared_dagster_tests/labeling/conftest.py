"""Fixtures for the labeling app: a real workspace whose automated stages ran Dagster-free (so images wait at a
human stage), the app served in-process on a free port, and headless Debian chromium through Playwright."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from beprepared_dagster.labeling.__main__ import load_workflow_file
from beprepared_dagster.labeling.config import LabelingSettings
from beprepared_dagster.labeling.server import LabelingServer
from beprepared_dagster.nodes.base import HumanNode
from beprepared_dagster.orchestration.discovery import discover
from beprepared_dagster.orchestration.executor import StageExecutor
from beprepared_dagster.store import order
from beprepared_dagster.store.workspace import WorkspaceStore
from beprepared_dagster.workflow import Workflow
from beprepared_dagster_tests.conftest import make_image

TAGS = [["dog", "cat", "bird", "fish"], ["indoor", "outdoor"], ["day", "night", "dusk", "dawn", "noon"]]
WORKFLOW_FILE = """
from beprepared_dagster import *

with Workspace(r"{ws}", name="pick") as workspace:
    Load(r"{photos}") >> HumanFilter() >> Save
with Workspace(r"{ws}", name="tagging") as workspace:
    Load(r"{photos}") >> HumanTag(tags={tags!r}, domain="tags") >> Save
with Workspace(r"{ws}", name="captions") as workspace:
    Load(r"{photos}") >> SetCaption("a photo") >> HumanCaption(domain="caps") >> Save
"""
FILTER, TAG, CAPTION = "pick/human_filter", "tagging/human_tag", "captions/human_caption"
log = logging.getLogger("labeling-tests")


@dataclass
class Lab:
    """A workspace with three workflows (filter, tag, caption) whose images wait at their human stage."""

    root: Path
    photos: Path
    file: Path
    workflows: list[Workflow]
    size: tuple[int, int] = (160, 120)
    made: int = 0
    keys: list[str] = field(default_factory=list)
    shared_photos: bool = False

    @property
    def store(self) -> WorkspaceStore:
        return WorkspaceStore(self.root)

    def add_images(self, count: int) -> list[str]:
        """New images in the Load folder, run through the automated stages; returns their keys in order."""
        assert not self.shared_photos, "this lab shares its photos with others: use build_lab"
        for i in range(self.made, self.made + count):
            make_image(self.photos / f"img_{i:04d}.jpg", *self.size, seed=1000 + i)
        self.made += count
        fresh: list[str] = []
        for workflow in self.workflows:
            new = discover(self.store, workflow, set(self.keys), log).new_keys
            executor = StageExecutor(self.store, workflow, log)
            for stage in workflow.stages:
                if isinstance(stage.node, HumanNode):
                    break
                executor.run(stage, new)
            with self.store.db.connect() as conn:
                order.append_order(conn, workflow.name, new)
            fresh = fresh or new
        self.keys.extend(fresh)
        return fresh

    def journal(self) -> list[dict[str, Any]]:
        """Every journal row, oldest first, with its request id (read with plain sqlite3)."""
        path = self.root / "labels.sqlite"
        if not path.exists():
            return []
        with sqlite3.connect(path) as conn:
            rows = conn.execute(
                "SELECT id, domain, kind, image_id, value, labeler, request_id FROM journal ORDER BY id"
            ).fetchall()
        names = ("id", "domain", "kind", "image_id", "value", "labeler", "request_id")
        return [
            {**dict(zip(names, r, strict=True)), "value": json.loads(r[4]) if r[4] else None} for r in rows
        ]

    def latest(self, domain: str, kind: str) -> dict[str, Any]:
        return {k: lb.value for k, lb in self.store.journal.latest(domain, kind).items()}


def build_lab(base: Path, count: int, size: tuple[int, int] = (160, 120)) -> Lab:
    ws, photos = base / "workspace", base / "photos"
    photos.mkdir(parents=True)
    file = base / "lab_workflows.py"
    file.write_text(WORKFLOW_FILE.format(ws=ws, photos=photos, tags=TAGS))
    lab = Lab(ws, photos, file, load_workflow_file(file), size)
    lab.add_images(count)
    return lab


@pytest.fixture(scope="session")
def lab_template(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    return build_lab(tmp_path_factory.mktemp("lab-template"), 12)


@pytest.fixture
def lab(tmp_path: Path, lab_template: Lab) -> Lab:
    """12 small images waiting at each of the three human stages (a copy of one built per session; it cannot
    take new images — use `build_lab` for that)."""
    ws = tmp_path / "workspace"
    shutil.copytree(lab_template.root, ws)
    file = tmp_path / "lab_workflows.py"
    file.write_text(WORKFLOW_FILE.format(ws=ws, photos=lab_template.photos, tags=TAGS))
    workflows = load_workflow_file(file)
    return Lab(
        ws, lab_template.photos, file, workflows, made=12, keys=list(lab_template.keys), shared_photos=True
    )


@pytest.fixture
def serve() -> Iterator[Any]:
    """`serve(workflows, auth=None) -> url`: the app in this process on a free port, stopped afterwards."""
    servers: list[LabelingServer] = []

    def _serve(workflows: list[Workflow], auth: list[tuple[str, str]] | None = None) -> str:
        server = LabelingServer(workflows, LabelingSettings(port=0, auth=auth)).start()
        assert server.wait_ready(90), f"the app did not start: {server.error!r}"
        servers.append(server)
        return server.url

    yield _serve
    for server in servers:
        server.stop()


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian chromium (never a downloaded browser)."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail(
            "browser tests need Debian's chromium: `apt-get install -y chromium` "
            "(or deselect them with -m 'not browser')"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    tab.errors = []  # type: ignore[attr-defined]
    tab.on("pageerror", lambda exc: tab.errors.append(str(exc)))  # type: ignore[attr-defined]
    yield tab
    context.close()


def open_tab(page: Any, url: str, tab: str) -> None:
    """Open the app on `tab` and wait until its first image (or its done screen) shows."""
    page.goto(f"{url}?tab={tab}")
    page.wait_for_selector("#bp-labeler .bp-frame img.bp-img, #bp-labeler .bp-done", timeout=30000)
    page.wait_for_function("window.__bp && window.__bp.state().tab !== null")


def wait_saved(page: Any, timeout: float = 15000) -> dict:
    """Wait until the outbox is empty; returns the app's state."""
    page.wait_for_function("window.__bp.state().unsaved === 0", timeout=timeout)
    return page.evaluate("window.__bp.state()")


def acked(page: Any) -> list[dict]:
    return page.evaluate("window.__bp.outbox.acked")
