"""WDTagger on a tiny ONNX tagger laid out like a SmilingWolf repository (tiny_models/onnx_tagger.py), whose
tags follow the input's colours: the real preprocessing (BGR, 0–255, white square padding, transparency on
white, the size read from the model), thresholds, kohya's ordering options, loading through the product's
code (folders, the hub cache, offline errors, a folder missing `selected_tags.csv`), a fixed-batch model, a
corrupt image failing alone, and a workflow whose export shows the tags.

Does not cover the real SmilingWolf weights (not downloadable here), onnxruntime's CUDA provider or GPUs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from beprepared_dagster import AddTags, Load, RunFailed, Save, WDTagger, Workflow
from beprepared_dagster.errors import BeprepareError, WorkflowError
from beprepared_dagster.models import runtime
from beprepared_dagster.models.api import ModelSpec, ResolvedModel
from beprepared_dagster.models.backends.onnx_wd_tagger import to_input
from beprepared_dagster.models.loading import ModelNotFound
from beprepared_dagster.nodes.base import Image as NodeImage
from beprepared_dagster.store import WorkspaceStore
from beprepared_dagster.store.stages import read_rows
from beprepared_dagster_tests.conftest import make_image
from beprepared_dagster_tests.nodes.model_runs import run_node
from beprepared_dagster_tests.tiny_models.onnx_tagger import build_tiny_wd_tagger

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def colours(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("colours")
    images = {
        "red.png": Image.new("RGB", (48, 48), (255, 0, 0)),
        "blue.jpg": Image.new("RGB", (40, 56), (0, 0, 255)),
        "green.png": Image.new("RGB", (48, 48), (0, 255, 0)),
        "red-strip.png": Image.new("RGB", (12, 48), (255, 0, 0)),  # padded to 48x48: three quarters white
        "transparent.png": Image.new("RGBA", (48, 48), (0, 0, 0, 0)),  # black under alpha 0
    }
    for name, image in images.items():
        image.save(folder / name)
    (folder / "corrupt.jpg").write_bytes((folder / "red.png").read_bytes()[:60])
    return {name: folder / name for name in [*images, "corrupt.jpg"]}


@pytest.fixture(scope="module")
def tagged(tiny_wd_tagger: Path, colours: dict[str, Path]) -> dict:
    """One run of the default node over every colour image (and the corrupt one), batch 2."""
    return run_node(WDTagger(model=str(tiny_wd_tagger), batch_size=2), list(colours.values()))


def test_preprocessing_pads_on_white_centred_and_feeds_bgr_0_to_255():
    image = Image.new("RGB", (4, 2), (255, 0, 0))
    array = to_input(image, 4)
    assert array.shape == (4, 4, 3) and array.dtype == np.float32
    assert array[0].tolist() == [[255.0, 255.0, 255.0]] * 4 and array[3].tolist() == [[255.0] * 3] * 4
    assert array[1:3].reshape(-1, 3).tolist() == [[0.0, 0.0, 255.0]] * 8  # red, in BGR order, 0-255
    assert to_input(Image.new("RGB", (30, 90)), 64).shape == (64, 64, 3)  # resized to the model's size


def test_colours_come_out_only_when_the_input_is_bgr_0_to_255(tagged):
    assert "red_theme" in tagged["red.png"].set["tags"] and "blue_theme" not in tagged["red.png"].set["tags"]
    blue = tagged["blue.jpg"].set
    assert "blue_theme" in blue["tags"] and "red_theme" not in blue["tags"]
    assert blue["tags"][-1] == "hatsune_miku_(vocaloid)"  # a character above 0.85, after the general tags


def test_padding_and_transparency_are_white(tagged):
    assert "white_background" in tagged["red-strip.png"].set["tags"]
    assert "white_background" not in tagged["red.png"].set["tags"]
    assert "white_background" in tagged["transparent.png"].set["tags"]  # alpha composited on white


def test_thresholds_rating_scores_and_model_are_recorded(tagged, tiny_wd_tagger):
    red = tagged["red.png"].set
    assert red["tags"] == ["1girl", "long_hair", "red_theme", "^_^"]  # the tag list's order (kohya's)
    assert "looking_at_viewer" not in red["tags"] and "kaname_madoka" not in red["tags"]  # 0.27, 0.73 < 0.85
    assert set(red["wd_scores"]) == set(red["tags"]) and red["wd_scores"]["long_hair"] == pytest.approx(
        0.7311
    )
    assert red["wd_rating"] == "general" and tagged["green.png"].set["wd_rating"] == "sensitive"
    assert set(red["wd_ratings"]) == {"general", "sensitive", "questionable", "explicit"}
    assert red["tagger_model"] == str(tiny_wd_tagger)


def test_a_corrupt_image_fails_alone(tagged, colours):
    assert not tagged["corrupt.jpg"].kept and tagged["corrupt.jpg"].reason.startswith("bad image")
    assert sum(o.kept for o in tagged.values()) == len(colours) - 1


def test_lower_thresholds_let_more_tags_through(tiny_wd_tagger, colours):
    node = WDTagger(model=str(tiny_wd_tagger), general_threshold=0.2, character_threshold=0.5)
    tags = run_node(node, [colours["red.png"]])["red.png"].set["tags"]
    assert "looking_at_viewer" in tags and tags[-1] == "kaname_madoka"


def test_a_model_with_a_fixed_batch_dimension_tags_the_same(tmp_path, tagged, colours):
    fixed = build_tiny_wd_tagger(tmp_path / "fixed", batch=1)
    outcomes = run_node(WDTagger(model=str(fixed), batch_size=3), [colours["red.png"], colours["blue.jpg"]])
    for name in ("red.png", "blue.jpg"):
        assert outcomes[name].set["tags"] == tagged[name].set["tags"]


# --- kohya's options, on one model result ---------------------------------------------------------------

RESULT = {
    "ratings": {"general": 0.1, "sensitive": 0.2, "questionable": 0.6, "explicit": 0.1},
    "general": [["1girl", 0.9], ["long_hair", 0.8], ["^_^", 0.5], ["solo", 0.7]],
    "character": [["hatsune_miku_(vocaloid)", 0.95], ["kaname_madoka", 0.9]],
}
MODEL = ResolvedModel(ModelSpec("SmilingWolf/wd-swinv2-tagger-v3"), Path("/m"), COMMIT)


def tags_of(node: WDTagger, **props) -> list[str]:
    return node.outcome(NodeImage({"objectid": "x", **props}), RESULT, MODEL).set[node.target_prop]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, ["1girl", "long_hair", "^_^", "solo", "hatsune_miku_(vocaloid)", "kaname_madoka"]),
        (
            {"remove_underscore": True},
            ["1girl", "long hair", "^_^", "solo", "hatsune miku (vocaloid)", "kaname madoka"],
        ),
        (
            {"character_tags_first": True},
            ["hatsune_miku_(vocaloid)", "kaname_madoka", "1girl", "long_hair", "^_^", "solo"],
        ),
        (
            {"character_tag_expand": True},
            ["1girl", "long_hair", "^_^", "solo", "hatsune_miku", "vocaloid", "kaname_madoka"],
        ),
        (
            {"use_rating_tags": True},
            ["questionable", "1girl", "long_hair", "^_^", "solo", "hatsune_miku_(vocaloid)", "kaname_madoka"],
        ),
        (
            {"use_rating_tags_as_last_tag": True, "undesired_tags": "kaname madoka, ^_^"},
            ["1girl", "long_hair", "solo", "hatsune_miku_(vocaloid)", "questionable"],
        ),
        (
            {"always_first_tags": ["solo", "1boy", "Long hair"]},
            ["solo", "long_hair", "1girl", "^_^", "hatsune_miku_(vocaloid)", "kaname_madoka"],
        ),
    ],
)
def test_kohya_options_order_and_filter_the_tags(options, expected):
    node = WDTagger(**options)
    assert tags_of(node) == expected
    assert set(node.outcome(NodeImage({}), RESULT, MODEL).set["wd_scores"]) == set(expected)


def test_append_tags_keeps_upstream_tags_first_and_reads_them():
    node = WDTagger(append_tags=True, target_prop="labels", undesired_tags=["kaname_madoka"])
    assert tags_of(node, labels=["ohwx", "solo"])[:4] == ["ohwx", "solo", "1girl", "long_hair"]
    assert node.reads == ("objectid", "labels") and WDTagger().reads == ("objectid",)
    assert tags_of(WDTagger(), tags=["ohwx"])[0] == "1girl"  # replaced, as kohya does without --append_tags


def test_undesired_tags_are_one_cache_key_however_written_and_batching_is_not_in_it():
    assert (
        WDTagger(undesired_tags="long hair, solo").fingerprint
        == WDTagger(undesired_tags=["solo", "long_hair"], batch_size=4, devices=["cpu"]).fingerprint
    )
    assert WDTagger(general_threshold=0.3).fingerprint != WDTagger().fingerprint


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"general_threshold": 1.5}, "general_threshold must be a number between 0 and 1"),
        ({"character_threshold": "high"}, "character_threshold must be a number between 0 and 1"),
        ({"target_prop": ""}, "target_prop must be a public property name"),
        ({"use_rating_tags": True, "use_rating_tags_as_last_tag": True}, "choose one"),
        ({"remove_underscore": "yes"}, "remove_underscore must be True or False"),
        ({"undesired_tags": 3}, "undesired_tags must be a list of tags or a comma-separated string"),
        ({"treshold": 0.3}, "unknown parameter 'treshold'"),
    ],
)
def test_bad_parameters_fail_when_the_workflow_loads(kwargs, message):
    with pytest.raises(WorkflowError, match="WDTagger") as caught:
        WDTagger(**kwargs)
    assert message in str(caught.value)


# --- loading ---------------------------------------------------------------------------------------------


def test_offline_without_the_model_names_the_download_command():
    with pytest.raises(ModelNotFound) as caught:
        run_node(WDTagger(), [])
    assert (
        "hf download SmilingWolf/wd-swinv2-tagger-v3 --include 'model.onnx' --include 'selected_tags.csv'"
        in str(caught.value)
    )


def test_the_default_model_is_read_from_the_hub_cache_with_its_commit(offline, tiny_wd_tagger, colours):
    repo = offline / "models--SmilingWolf--wd-swinv2-tagger-v3"
    shutil.copytree(tiny_wd_tagger, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    outcome = run_node(WDTagger(), [colours["red.png"]])["red.png"]
    assert outcome.set["tagger_model"] == f"SmilingWolf/wd-swinv2-tagger-v3@{COMMIT}"


def test_a_folder_without_selected_tags_csv_names_it(tmp_path, tiny_wd_tagger):
    folder = shutil.copytree(tiny_wd_tagger, tmp_path / "no-tags")
    (folder / "selected_tags.csv").unlink()
    with pytest.raises(ModelNotFound, match="is not a WD tagger model folder: missing selected_tags.csv"):
        run_node(WDTagger(model=str(folder)), [])


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ("name,category\nfoo,0\n", "is not a WD tag list"),
        ("tag_id,name,category,count\n1,only_one,0,5\n", "has 13 outputs but selected_tags.csv lists 1 tags"),
    ],
)
def test_a_tag_list_that_does_not_fit_the_model_fails_naming_both(
    tmp_path, tiny_wd_tagger, colours, csv, message
):
    folder = shutil.copytree(tiny_wd_tagger, tmp_path / "mismatch")
    (folder / "selected_tags.csv").write_text(csv)
    with pytest.raises(BeprepareError, match=message):
        run_node(WDTagger(model=str(folder)), [colours["red.png"]])


# --- in a workflow ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_workflow_exports_the_tags_and_a_rerun_needs_no_model(
    tmp_path, workspace_dir, tiny_wd_tagger, colours
):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("red.png", "blue.jpg"):
        shutil.copy(colours[name], photos / name)
    good = make_image(tmp_path / "photo.jpg", 320, 240).read_bytes()
    (photos / "broken.jpg").write_bytes(good[: len(good) // 2])  # passes Load's probe, fails a full decode
    model = shutil.copytree(tiny_wd_tagger, tmp_path / "model-copy")

    def flow() -> Workflow:
        tagger = WDTagger(model=str(model), undesired_tags=["^_^"], always_first_tags=["1girl"])
        return Workflow(
            "tag",
            Load(photos) >> tagger >> AddTags("ohwx") >> Save(tags_prop="tags"),
            workspace=workspace_dir,
        )

    flow().run()
    captions = {p.name.split(".")[0]: p.read_text() for p in (workspace_dir / "output").glob("*.txt")}
    assert captions == {
        "red": "1girl, long hair, red theme, ohwx",
        "blue": "1girl, long hair, blue theme, hatsune miku (vocaloid), ohwx",
    }
    with WorkspaceStore(workspace_dir).db.connect() as conn:
        rows = [r[0] for r in read_rows(conn, "tag", "wd_tagger").values()]
    assert [r.reason for r in rows if r.status != "kept"] == [
        "bad image: truncated image data (the file ends early)"
    ]
    loads = runtime.CALLS["load"]
    shutil.rmtree(model)  # every image cached: the re-run must not even look for the model
    summary = flow().run()
    assert runtime.CALLS["load"] == loads and summary.runs == []


@pytest.mark.slow
def test_workflow_with_a_missing_model_fails_before_writing(tmp_path, workspace_dir, colours):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(colours["red.png"], photos / "red.png")
    with pytest.raises(RunFailed, match="hf download SmilingWolf/wd-swinv2-tagger-v3"):
        Workflow("tag", Load(photos) >> WDTagger() >> Save, workspace=workspace_dir).run()


# --- devices ---------------------------------------------------------------------------------------------


def test_without_a_cuda_provider_the_stage_runs_on_the_cpu_and_with_one_on_every_gpu(monkeypatch):
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert WDTagger().device_settings.devices == ("cpu",)  # no GPU search (no torch import) for nothing
    assert WDTagger(devices=["cuda:1"]).device_settings.devices == ("cuda:1",)
    monkeypatch.setattr(
        onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    assert WDTagger().device_settings.devices is None  # every visible GPU


def test_a_cuda_device_maps_to_its_provider_or_falls_back_to_the_cpu_with_a_warning(monkeypatch, caplog):
    import logging

    import onnxruntime

    from beprepared_dagster.models.backends import onnx_session

    monkeypatch.setattr(
        onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    log = logging.getLogger("onnx-test")
    assert onnx_session.providers("cuda:1", log) == [
        ("CUDAExecutionProvider", {"device_id": 1}),
        "CPUExecutionProvider",
    ]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    monkeypatch.setattr(onnx_session, "_warned_no_cuda", False)
    with caplog.at_level(logging.WARNING):
        assert onnx_session.providers("cuda:0", log) == ["CPUExecutionProvider"]
    assert "pip install onnxruntime-gpu" in caplog.text


def test_an_onnxruntime_allocation_failure_is_an_out_of_memory_the_runtime_backs_off_from():
    from beprepared_dagster.models import devices
    from beprepared_dagster.models.backends import onnx_session

    class Session:
        def run(self, outputs, feeds):
            raise Exception("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Failed to allocate memory for 2GB")

    with pytest.raises(RuntimeError) as caught:
        onnx_session.run(Session(), {})
    assert devices.is_oom(caught.value)
