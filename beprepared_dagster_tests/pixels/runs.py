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


def standin_centerface(path: Path) -> Path:
    """An ONNX file with CenterFace's input and output names and strides (heatmap, scale, offset, landmarks at
    1/4 size) whose "faces" are saturated red areas: 16-pixel boxes around every red 4×4 cell. Lets the
    CenterFace path (OpenCV DNN, decoding, NMS, box scaling) run without the real weights."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def const(name: str, values: Any) -> Any:
        return numpy_helper.from_array(np.asarray(values, np.float32), name)

    inits = [
        const("w_heat", np.array([0.1, -0.1, -0.1]).reshape(1, 3, 1, 1)), const("b_heat", [-10.0]),
        const("w_scale", np.zeros((2, 3, 1, 1))), const("b_scale", [np.log(4.0)] * 2),
        const("w_two", np.zeros((2, 3, 1, 1))), const("b_two", [0.0] * 2),
        const("w_ten", np.zeros((10, 3, 1, 1))), const("b_ten", [0.0] * 10),
    ]  # fmt: skip
    nodes = [
        helper.make_node("AveragePool", ["input.1"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Conv", ["pooled", "w_heat", "b_heat"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["537"]),
        helper.make_node("Conv", ["pooled", "w_scale", "b_scale"], ["538"]),
        helper.make_node("Conv", ["pooled", "w_two", "b_two"], ["539"]),
        helper.make_node("Conv", ["pooled", "w_ten", "b_ten"], ["540"]),
    ]
    outputs = [("537", 1), ("538", 2), ("539", 2), ("540", 10)]
    graph = helper.make_graph(
        nodes,
        "centerface-standin",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["n", c, "h", "w"]) for n, c in outputs],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
