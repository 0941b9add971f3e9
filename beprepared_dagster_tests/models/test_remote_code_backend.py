"""The remote-code backends (Molmo v1, xGen-MM) on tiny model folders whose own Python files transformers loads
through `auto_map`: refused without trust_remote_code, one caption per image, a batch that is one real batch
(Molmo's -1 right padding over images of different lengths) equal to single runs, xGen-MM's crop band.

Asserts the plumbing, never the text (random weights write junk). Does not cover the real checkpoints' code
(it cannot be downloaded here) or GPUs."""

from __future__ import annotations

import pytest

from beprepared_dagster.errors import BeprepareError
from beprepared_dagster.models.api import ModelSpec, ResolvedModel, WorkItem
from beprepared_dagster.models.backends.remote_code import MolmoBackend, XGenMMBackend, pad_right

pytestmark = pytest.mark.slow


def backend(cls, folder, trust=True, **args):
    spec = ModelSpec(str(folder), family="tiny remote code", trust_remote_code=trust)
    args = {"prompt": "Describe it.", "max_new_tokens": 5, "temperature": 1.0, "top_p": 0.9, **args}
    return cls(ResolvedModel(spec, folder), "cpu", "float32", None, **args)


def images():
    from PIL import Image

    # Wide and square images: the Molmo stand-in gives them different numbers of crops and tokens.
    return [Image.new("RGB", (40 + 30 * (i % 2), 40), (60 * i, 90, 200)) for i in range(3)]


@pytest.mark.parametrize(("cls", "name"), [(MolmoBackend, "molmo"), (XGenMMBackend, "xgenmm")])
def test_without_trust_remote_code_loading_is_refused(cls, name, tiny_remote_code):
    engine = backend(cls, getattr(tiny_remote_code, name), trust=False)
    with pytest.raises(
        BeprepareError, match="ships its own Python code and is refused without trust_remote_code"
    ):
        engine.load()


@pytest.mark.parametrize(("cls", "name"), [(MolmoBackend, "molmo"), (XGenMMBackend, "xgenmm")])
def test_a_batch_gives_one_caption_per_image_equal_to_single_runs(cls, name, tiny_remote_code):
    engine = backend(cls, getattr(tiny_remote_code, name))
    engine.load()
    prepared = [
        engine.prepare(image, WorkItem(i, f"{i}.png", {"seed": 3 + i})) for i, image in enumerate(images())
    ]
    together = engine.run(prepared)
    assert len(together) == 3 and all(isinstance(c, str) for c in together)
    assert [engine.run([p])[0] for p in prepared] == together


def test_molmo_runs_a_batch_as_one_padded_batch(tiny_remote_code, monkeypatch):
    engine = backend(MolmoBackend, tiny_remote_code.molmo)
    engine.load()
    seen = []
    original = engine.net.generate_from_batch

    def spy(batch, config, **kwargs):
        seen.append(batch["input_ids"].clone())
        return original(batch, config, **kwargs)

    monkeypatch.setattr(engine.net, "generate_from_batch", spy)
    engine.run([engine.prepare(image, WorkItem(i, "x", {})) for i, image in enumerate(images())])
    (ids,) = seen  # one call for the three images, not one prompt with three images
    assert ids.shape[0] == 3
    lengths = (ids != -1).sum(dim=1).tolist()
    assert lengths[0] < lengths[1] and (ids[0, lengths[0] :] == -1).all()


def test_pad_right_fills_every_dimension_with_minus_one():
    import torch

    batch = pad_right([{"x": torch.ones(2, 3)}, {"x": torch.zeros(1, 4)}])
    assert batch["x"].shape == (2, 2, 4)
    assert batch["x"][0, :, 3].tolist() == [-1, -1] and batch["x"][1, 1].tolist() == [-1, -1, -1, -1]
    assert batch["x"][0, :2, :3].eq(1).all()


@pytest.mark.parametrize(("crop", "size"), [([0.05, 0.91], (50, 86)), (None, (50, 100))])
def test_xgenmm_shows_the_model_the_crop_band(tiny_remote_code, crop, size):
    from PIL import Image

    engine = backend(XGenMMBackend, tiny_remote_code.xgenmm, crop=crop)
    engine.load()
    (pixels, seen_size), _ = engine.prepare(Image.new("RGB", (50, 100)), WorkItem(0, "x", {}))
    assert seen_size == size and pixels.dim() == 4
