"""Upscale with SwinIR / ESRGAN through spandrel on small random-weight state dicts: tiling against the untiled
result (seams blended, tiles aligned), the node through the real runtime (exact `min_edge`, format, large
images untouched, `upscale_info`), weights-file errors naming the file, spandrel imported without
torchvision, and one headless run whose cached re-run needs no weights file.

Not covered here: real SwinIR-M / Real-ESRGAN release weights (a GPU or download job), multi-GPU workers
(shared with the captioners, see models/test_runtime.py), out-of-memory on a GPU.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from beprepared_dagster import Load, Save, Upscale, Workflow
from beprepared_dagster.models.backends.tiling import count_tiles, run_tiled, tile_spans
from beprepared_dagster.models.backends.upscale import UpscaleModelError, load_descriptor
from beprepared_dagster.models.loading import ModelNotFound
from beprepared_dagster.store.objects import ObjectStore
from beprepared_dagster_tests.conftest import make_image
from beprepared_dagster_tests.pixels.runs import run_pixel_node, stored_image, tiny_upscalers


@pytest.fixture(scope="session")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return tiny_upscalers(tmp_path_factory.mktemp("upscalers"))


@pytest.fixture
def objects(tmp_path: Path) -> ObjectStore:
    return ObjectStore(tmp_path / "objects")


def test_tile_spans_cover_the_axis_overlap_and_start_aligned():
    assert tile_spans(100, 512, 32) == [(0, 100)]
    spans = tile_spans(1000, 256, 32)
    assert spans[0][0] == 0 and spans[-1][1] == 1000
    assert all(start % 16 == 0 for start, _ in spans)
    assert all(b[0] <= a[1] - 32 for a, b in zip(spans, spans[1:], strict=False))  # neighbours overlap ≥ 32
    assert count_tiles(1000, 100, 256, 32) == len(spans)


def test_spandrel_loads_without_torchvision(weights):
    assert "torchvision" not in sys.modules or sys.modules["torchvision"].__spec__ is not None
    for method, path in weights.items():
        descriptor = load_descriptor(path)
        assert descriptor.scale == 4
        assert descriptor.architecture.id == {"SWINIR": "SwinIR", "ESRGAN": "ESRGAN"}[method]
    assert "torchvision" not in sys.modules or sys.modules["torchvision"].__spec__ is not None


@pytest.mark.slow
@pytest.mark.parametrize("method", ["SWINIR", "ESRGAN"])
def test_tiled_output_matches_the_untiled_one_and_naive_tiles_would_show_seams(weights, method):
    import torch

    descriptor = load_descriptor(weights[method])
    torch.manual_seed(1)  # a smooth random picture: seams would stand out against it
    picture = torch.nn.functional.interpolate(torch.rand(1, 3, 9, 13), size=(72, 100), mode="bilinear")
    with torch.inference_mode():
        whole = descriptor(picture).float()
        tiled = run_tiled(descriptor, picture, 4, tile=48, overlap=16)
        naive = run_tiled(descriptor, picture, 4, tile=32, overlap=0)
    assert tiled.shape == whole.shape == (1, 3, 288, 400)
    error, seams = (tiled - whole).abs() * 255, (naive - whole).abs() * 255
    assert error.max() < 2 and error.mean() < 0.1
    assert seams.max() > 4 * error.max()  # the same model without overlap: visible seams


def test_small_images_reach_exactly_min_edge_and_large_ones_keep_their_bytes(weights, objects, tmp_path):
    small = stored_image(objects, make_image(tmp_path / "small.jpg", 60, 40, seed=1))
    large = stored_image(objects, make_image(tmp_path / "large.png", 300, 200, seed=2, fmt="PNG"))
    for method in ("SWINIR", "ESRGAN"):
        node = Upscale(method=method, min_edge=128, model=str(weights[method]), tile=32, tile_overlap=8)
        up, kept = run_pixel_node(node, [small, large], objects)
        assert up.kept and (up.set["width"], up.set["height"]) == (192, 128)
        assert up.set["format"] == "PNG" and up.set["ext"] == ".png" and objects.has(up.set["objectid"])
        assert up.set["upscale_info"] == {
            "method": method, "model": weights[method].name, "min_edge": 128, "original_width": 60,
            "original_height": 40, "scaled_width": 192, "scaled_height": 128,
        }  # fmt: skip
        assert kept.kept and kept.set == {}  # same object id: not re-encoded


def test_format_and_tiling_are_part_of_the_cache_key_but_devices_are_not(weights):
    base = Upscale(method="ESRGAN", model=str(weights["ESRGAN"]))
    assert base.fingerprint != Upscale(method="ESRGAN", model=str(weights["ESRGAN"]), tile=256).fingerprint
    assert (
        base.fingerprint != Upscale(method="ESRGAN", model=str(weights["ESRGAN"]), format="JPEG").fingerprint
    )
    assert (
        base.fingerprint == Upscale(method="ESRGAN", model=str(weights["ESRGAN"]), batch_size=4).fingerprint
    )
    assert base.fingerprint != Upscale(method="SWINIR", model=str(weights["ESRGAN"])).fingerprint


def test_a_missing_weights_file_is_named_with_where_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setenv("BEPREPARED_MODELS_DIR", str(tmp_path / "models"))
    with pytest.raises(ModelNotFound) as caught:
        Upscale(method="SWINIR").model_spec()
    message = str(caught.value)
    assert str(tmp_path / "models" / "003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN.pth") in message
    assert "releases/download/v0.0/003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN.pth" in message
    with pytest.raises(ModelNotFound, match=r"weights file .*mine\.pth does not exist; check model="):
        Upscale(method="ESRGAN", model=str(tmp_path / "mine.pth")).model_spec()


def test_a_file_that_is_not_an_upscaler_is_named(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UpscaleModelError, match=f"{junk} could not be loaded"):
        load_descriptor(junk)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "SWINIR", "tile": 8}, "tile must be an integer ≥ 32"),
        ({"method": "ESRGAN", "tile": 64, "tile_overlap": 32}, "tile_overlap=32 must be less than half"),
        ({"method": "ESRGAN", "min_edge": 0}, "min_edge must be an integer ≥ 1"),
        ({"method": "ESRGAN", "model": ""}, "model must be a weights file"),
    ],
)
def test_bad_parameters_fail_at_load_time_as_upscale(kwargs, message):
    from beprepared_dagster.errors import WorkflowError

    with pytest.raises(WorkflowError, match=f"^Upscale: {message}"):
        Upscale(**kwargs)


@pytest.mark.slow
def test_a_headless_run_upscales_and_its_cached_rerun_needs_no_weights(weights, tmp_path, workspace_dir):
    make_image(tmp_path / "photos" / "tiny.jpg", 40, 30, seed=4)
    make_image(tmp_path / "photos" / "bad.jpg", 40, 30, seed=5)
    (tmp_path / "photos" / "bad.jpg").write_bytes((tmp_path / "photos" / "bad.jpg").read_bytes()[:200])
    path = tmp_path / "esrgan.pth"
    path.write_bytes(weights["ESRGAN"].read_bytes())

    def run() -> list[Path]:
        flow = Load(tmp_path / "photos") >> Upscale(method="ESRGAN", min_edge=64, model=str(path)) >> Save
        Workflow("upscaled", flow, workspace=workspace_dir).run()
        return sorted((workspace_dir / "output").glob("*.png"))

    [first] = run()  # the truncated file is rejected alone
    from PIL import Image

    assert Image.open(first).size == (85, 64)
    path.unlink()
    assert run() == [first]  # everything cached: the weights file is not even looked for
