"""The documentation site builds with `mkdocs build --strict` (what `make docs` runs): the node reference is
generated, the examples and the changelog are included, and a broken link, anchor or missing page fails.

Not covered: how the pages look in a browser."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from beprepared_dagster_tests.docs.helpers import ROOT

pytestmark = pytest.mark.slow


def build(config_dir: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", "mkdocs.yml", "-d", str(site)],
        cwd=config_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_strict_build_has_every_page(tmp_path):
    result = build(ROOT, tmp_path / "site")
    assert result.returncode == 0, result.stderr
    site = tmp_path / "site"
    for page in ("architecture", "examples", "contributing", "operations", "changelog", "nodes"):
        assert (site / page / "index.html").is_file(), page
    pixels = (site / "nodes" / "pixels" / "index.html").read_text(encoding="utf-8")
    assert "ConvertFormat" in pixels and "quality" in pixels
    examples = (site / "examples" / "index.html").read_text(encoding="utf-8")
    assert "ohwx person" in examples  # included from examples/01_trigger_word.py
    assert 'class="mermaid"' in (site / "architecture" / "index.html").read_text(encoding="utf-8")
    assert "Unreleased" in (site / "changelog" / "index.html").read_text(encoding="utf-8")


def copy_project(target: Path) -> Path:
    for name in ("docs", "examples"):
        shutil.copytree(ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("mkdocs.yml", "CHANGELOG.md"):
        shutil.copy(ROOT / name, target / name)
    return target


def test_a_broken_link_or_anchor_fails_the_build(tmp_path):
    project = copy_project(tmp_path / "project")
    page = project / "docs" / "operations.md"
    page.write_text(
        page.read_text() + "\n[gone](no-such-page.md) and [nowhere](architecture.md#no-such-section)\n"
    )
    result = build(project, tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-page.md" in result.stderr and "no-such-section" in result.stderr


def test_a_missing_included_example_fails_the_build(tmp_path):
    project = copy_project(tmp_path / "project")
    (project / "examples" / "03_fuzzy_dedupe.py").unlink()
    result = build(project, tmp_path / "site")
    assert result.returncode != 0
    assert "03_fuzzy_dedupe.py" in result.stderr
