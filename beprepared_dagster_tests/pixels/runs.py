"""Helpers for the pixel-node tests: run a pixel model node through the real runtime the way the model stage
does (resolve, work items from stored objects, `finish` with a context), and tiny random upscaler weights."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from beprepared_dagster.models import loading, runtime
from beprepared_dagster.models.api import WorkItem
from beprepared_dagster.nodes import imaging
from beprepared_dagster.nodes.base import Image, NodeContext, Outcome
from beprepared_dagster.store.objects import ObjectStore

LOG = logging.getLogger("pixel-node-test")


def stored_image(objects: ObjectStore, path: Path) -> Image:
    """The properties Load would give a file, with its bytes in `objects`."""
    data = path.read_bytes()
    return Image({"objectid": objects.put_bytes(data), "original_path": str(path), **imaging.probe(data)})


def run_pixel_node(node: Any, images: list[Image], objects: ObjectStore) -> list[Outcome]:
    """Outcomes aligned with `images`, computed through `models.runtime.run_model` and `node.finish`."""
    model = loading.resolve(node.model_spec())
    items = [
        WorkItem(i, str(objects.path(im["objectid"])), node.work_data(im)) for i, im in enumerate(images)
    ]
    results: dict[int, Any] = {}
    runtime.run_model(
        node.backend,
        dict(node.backend_args()),
        model,
        items,
        batch_size=node.model_batch_size,
        settings=node.device_settings,
        log=LOG,
        on_results=lambda batch: results.update(batch),
    )
    ctx = NodeContext(objects=objects, log=LOG)
    return [node.finish(im, results[i], model, ctx) for i, im in enumerate(images)]


def tiny_upscalers(folder: Path) -> dict[str, Path]:
    """Random-weight SwinIR (real-SR "nearest+conv" upsampler, ×4) and ESRGAN (RRDBNet, ×4) weights files,
    the architectures of the original's SWINIR and ESRGAN methods at a few hundred KB each (seeded)."""
    import torch

    from beprepared_dagster.models.backends.upscale import import_spandrel

    import_spandrel()
    from spandrel.architectures.ESRGAN import ESRGAN
    from spandrel.architectures.SwinIR import SwinIR

    torch.manual_seed(0)
    swinir = SwinIR(
        upscale=4, img_size=16, window_size=4, depths=[1], embed_dim=12, num_heads=[2], mlp_ratio=2,
        upsampler="nearest+conv", resi_connection="1conv",
    )  # fmt: skip
    esrgan = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=4)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"SWINIR": folder / "tiny-swinir-x4.pth", "ESRGAN": folder / "tiny-esrgan-x4.pth"}
    torch.save(swinir.state_dict(), paths["SWINIR"])
    torch.save(esrgan.state_dict(), paths["ESRGAN"])
    return paths
