"""NudeNet on the real detector that ships inside the `nudenet` wheel, over benign images only: a public-domain
NASA portrait (the model finds a female face) and the committed fixtures. Batched results equal the package's
own `NudeDetector().detect(path)`; `has_female` / `has_male` follow the right labels and the threshold; the
flagged branch (`has_nudity`) runs through an injected detector, in the original's "drop NSFW" workflow as a
user writes it; a corrupt image fails alone; without the package the node fails when the workflow loads.

No NSFW image is committed or generated. Does not cover onnxruntime's CUDA provider or GPUs."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from beprepared_dagster import Filter, Load, NudeNet, Save, Workflow, Workspace
from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.models.backends.onnx_nudenet import NudeNetBackend
from beprepared_dagster.store import WorkspaceStore
from beprepared_dagster.store.stages import read_rows
from beprepared_dagster_tests.conftest import DATA, make_image
from beprepared_dagster_tests.nodes.model_runs import run_node

PORTRAIT = DATA.parent / "photos" / "astronaut-320x240.jpg"
BENIGN = ["640x480.jpg", "exif-rotated-60x40.jpg", "rgba-32x32.png", "webp-rgb.webp", "bitmap.bmp"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("benign")
    paths = [Path(shutil.copy(PORTRAIT, folder))] + [Path(shutil.copy(DATA / n, folder)) for n in BENIGN]
    good = PORTRAIT.read_bytes()
    (folder / "broken.jpg").write_bytes(good[: len(good) // 2])
    return [*paths, folder / "broken.jpg"]


@pytest.fixture(scope="module")
def detected(files: list[Path]) -> dict:
    return run_node(NudeNet(batch_size=4), files)


def test_batched_detections_are_the_packages_own(files, detected):
    from nudenet import NudeDetector

    detector = NudeDetector()
    for path in files[:-1]:
        expected = detector.detect(str(path))
        got = detected[path.name].set["nudenet"]
        assert [d["class"] for d in got] == [d["class"] for d in expected], path.name
        for ours, theirs in zip(got, expected, strict=True):
            assert ours["score"] == pytest.approx(theirs["score"], abs=2e-3)
            assert all(abs(a - b) <= 1 for a, b in zip(ours["box"], theirs["box"], strict=True))


def test_the_real_model_finds_the_face_and_no_nudity(detected):
    portrait = detected[PORTRAIT.name].set
    assert [d["class"] for d in portrait["nudenet"]] == ["FACE_FEMALE"]
    x, y, w, h = portrait["nudenet"][0]["box"]
    assert 80 < x < 140 and 30 < y < 80 and 40 < w < 90 and 40 < h < 90  # the face, in 320x240 pixels
    assert portrait["has_female"] and not portrait["has_male"] and not portrait["has_nudity"]
    for name in BENIGN:
        assert detected[name].set == {
            "nudenet": [],
            "has_nudity": False,
            "has_female": False,
            "has_male": False,
        }


def test_the_threshold_decides_the_flags_not_the_detections(files):
    strict = run_node(NudeNet(threshold=0.95), files[:1])[PORTRAIT.name].set
    assert [d["class"] for d in strict["nudenet"]] == ["FACE_FEMALE"] and not strict["has_female"]


def test_a_corrupt_image_fails_alone(detected, files):
    assert not detected["broken.jpg"].kept and detected["broken.jpg"].reason.startswith("bad image")
    assert sum(o.kept for o in detected.values()) == len(files) - 1


# --- the flagged branch, through an injected detector -----------------------------------------------------

INJECTED = {
    "nsfw_breast": [("FEMALE_BREAST_EXPOSED", 0.91), ("FACE_FEMALE", 0.8)],
    "nsfw_male": [("MALE_GENITALIA_EXPOSED", 0.8)],
    "weak": [("BUTTOCKS_EXPOSED", 0.4)],
    "covered": [("FEMALE_BREAST_COVERED", 0.9), ("BELLY_EXPOSED", 0.7)],
    "man": [("FACE_MALE", 0.77)],
}


@pytest.fixture
def injected(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backend's model call answers from the file name; loading, decoding and batching stay real."""

    def run(self, batch):
        return [
            [{"class": c, "score": s, "box": [1, 2, 3, 4]} for c, s in INJECTED.get(Path(item.path).stem, [])]
            for _, _, item in batch
        ]

    monkeypatch.setattr(NudeNetBackend, "run", run)


@pytest.fixture
def pictures(tmp_path: Path) -> list[Path]:
    return [make_image(tmp_path / "in" / f"{name}.jpg", 64, 48, seed=i) for i, name in enumerate(INJECTED)]


@pytest.mark.parametrize(
    ("name", "nudity", "female", "male"),
    [
        ("nsfw_breast", True, True, False),
        ("nsfw_male", True, False, True),  # the original said has_female here too
        ("weak", False, False, False),  # 0.4 < 0.5
        ("covered", False, True, False),
        ("man", False, False, True),
    ],
)
def test_flags_follow_the_labels(injected, pictures, name, nudity, female, male):
    outcome = run_node(NudeNet(), pictures)[f"{name}.jpg"].set
    assert (outcome["has_nudity"], outcome["has_female"], outcome["has_male"]) == (nudity, female, male)


def test_a_lower_threshold_flags_the_weak_detection(injected, pictures):
    assert run_node(NudeNet(threshold=0.3), pictures)["weak.jpg"].set["has_nudity"]


@pytest.mark.slow
def test_drop_nsfw_workflow_exports_only_the_safe_images(injected, pictures, tmp_path, monkeypatch):
    photos = pictures[0].parent
    good = make_image(tmp_path / "photo.jpg", 320, 240).read_bytes()
    (photos / "broken.jpg").write_bytes(good[: len(good) // 2])  # passes Load's probe, fails a full decode
    monkeypatch.chdir(tmp_path)
    with Workspace("ws") as workspace:
        Load(str(photos)) >> NudeNet >> Filter(lambda image: not image.has_nudity) >> Save
        workspace.run()
    exported = sorted(p.name.split(".")[0] for p in (tmp_path / "ws" / "output").glob("*.jpg"))
    assert exported == ["covered", "man", "weak"]
    with WorkspaceStore(tmp_path / "ws").db.connect() as conn:
        rows = [r[0] for r in read_rows(conn, workspace.name, "nude_net").values()]
    assert [r.reason for r in rows if r.status != "kept"] == [
        "bad image: truncated image data (the file ends early)"
    ]


# --- parameters and the optional dependency ---------------------------------------------------------------


def test_threshold_is_in_the_cache_key_and_batching_is_not():
    assert NudeNet(threshold=0.6).fingerprint != NudeNet().fingerprint
    assert NudeNet(batch_size=2, devices=["cpu"]).fingerprint == NudeNet().fingerprint


@pytest.mark.parametrize("threshold", [0, 1.5, "high", True])
def test_a_bad_threshold_fails_when_the_workflow_loads(threshold):
    with pytest.raises(WorkflowError, match=r"NudeNet: threshold must be a number in \(0, 1\]"):
        NudeNet(threshold=threshold)


def test_without_the_package_the_node_fails_when_the_workflow_loads_with_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "nudenet", None)
    with pytest.raises(WorkflowError) as caught:
        Workflow("w", Load(str(DATA)) >> NudeNet() >> Save)
    assert "pip install 'beprepared-dagster[nsfw]'" in str(caught.value)
    assert "AGPL-3.0" in str(caught.value)
