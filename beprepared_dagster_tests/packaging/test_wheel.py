"""The package as a user gets it: `python -m build` makes an sdist and a wheel (the wheel built from the
sdist, so both are complete); the wheel holds every file the package tracks (labeling static files, demo
images, vocabularies); installed into a fresh virtualenv, not editable and with no repository on the path,
`beprepared --version` prints pyproject's version, the demo definitions load, and a workflow runs to its export.

The fresh virtualenv reuses the dependencies already installed here (a `.pth` line pointing at this
interpreter's site-packages, whose own `.pth` hooks, the editable install's among them, are not processed),
and the wheel is installed with `--no-deps --no-index`: nothing is downloaded. Not covered: installing the
dependencies themselves from the package index."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def run(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 300) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out)], cwd=ROOT)
    return out


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory) -> Path:
    """A fresh virtualenv with the wheel installed (not editable) and this environment's dependencies."""
    home = tmp_path_factory.mktemp("fresh")
    target = home / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(target)], cwd=home)
    python = target / "bin" / "python"
    (wheel,) = dist.glob("*.whl")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        cwd=home,
    )
    site = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=home)
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site.strip()) / "_beprepared_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    return target


def fresh_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "BEPREPARED_", "DAGSTER_"))}
    env.update(BEPREPARED_WORKSPACE=str(home / "workspace"), HOME=str(home), NO_COLOR="1")
    return {**env, "BEPREPARED_WARM": "0"}  # no warm runner left behind by `beprepared run` (test_warm's)


def test_sdist_and_wheel_are_built(dist):
    assert sorted(p.name for p in dist.iterdir()) == [
        f"beprepared_dagster-{VERSION}-py3-none-any.whl",
        f"beprepared_dagster-{VERSION}.tar.gz",
    ]


def test_the_wheel_holds_every_tracked_package_file(dist):
    tracked = run(["git", "ls-files", "beprepared_dagster"], cwd=ROOT).split()
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [path for path in tracked if path not in names]
    assert not missing, f"left out of the wheel (add them to [tool.setuptools.package-data]): {missing}"
    assert not [n for n in names if n.startswith("beprepared_dagster_tests/")]


def test_the_installed_package_is_used_not_the_checkout(venv, tmp_path):
    code = (
        "import importlib.util, beprepared_dagster; print(beprepared_dagster.__file__); "
        "print(importlib.util.find_spec('beprepared_dagster_tests'))"
    )
    out = run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path, env=fresh_env(tmp_path)).split()
    assert Path(out[0]).is_relative_to(venv), out[0]
    assert out[1] == "None"  # the tests live only in the repository: it is not on the path


def test_beprepared_version_is_the_package_version(venv, tmp_path):
    out = run([str(venv / "bin" / "beprepared"), "--version"], cwd=tmp_path, env=fresh_env(tmp_path))
    assert out.strip() == f"beprepared-dagster {VERSION}"


def test_the_demo_definitions_load_from_the_installed_package(venv, tmp_path):
    code = (
        "from beprepared_dagster.definitions import defs; "
        "print(' '.join(sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys())))"
    )
    out = run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path, env=fresh_env(tmp_path))
    keys = out.split()
    assert {"demo/load", "demo/human_filter", "demo/human_tag", "demo/save", "demo/dataset_stats"} <= set(
        keys
    )


FLOW = """
from pathlib import Path

import beprepared_dagster
from beprepared_dagster import ConvertFormat, FilterBySize, Load, Save, SetCaption, Workspace

with Workspace("workspace", name="tiny") as workspace:
    images = Path(beprepared_dagster.__file__).parent / "demo" / "images"
    Load(images) >> FilterBySize(min_edge=512) >> ConvertFormat("JPEG") >> SetCaption("ohwx photo") >> Save
    workspace.run()
"""


def test_a_workflow_runs_from_the_installed_package(venv, tmp_path):
    (tmp_path / "flow.py").write_text(FLOW)
    run([str(venv / "bin" / "beprepared"), "run", "flow.py"], cwd=tmp_path, env=fresh_env(tmp_path))
    output = tmp_path / "workspace" / "output"
    captions = [p.read_text() for p in output.glob("*.txt")]
    assert captions and set(captions) == {"ohwx photo"}
    assert len(list(output.glob("*.jpg"))) == len(captions) == 5
    stats = (output / "dataset_stats.html").read_text()
    assert "CLIP" in stats  # token counts come from the vocabulary shipped as package data


def test_the_labeling_apps_static_files_are_installed(venv, tmp_path):
    code = (
        "from importlib.resources import files; "
        "static = files('beprepared_dagster.labeling') / 'static'; "
        "print(sorted(p.name for p in static.iterdir()))"
    )
    out = run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path, env=fresh_env(tmp_path))
    assert "labeler.js" in out and "labeler.css" in out
