"""Run a model node's work through the real runtime (`models.runtime.run_model`) the way the model stage does,
without Dagster or a workspace: resolve the checkpoint and its extra checkpoints, build the backend arguments,
one work item per image file, and turn each result into the node's outcome."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from beprepared_dagster.models import loading, runtime
from beprepared_dagster.models.api import WorkItem
from beprepared_dagster.nodes.base import Image, Outcome
from beprepared_dagster.nodes.model import ModelNode


def run_node(node: ModelNode, files: list[Path], log: Any = None) -> dict[str, Outcome]:
    """Outcomes by file name."""
    model = loading.resolve(node.model_spec())
    extras = {name: loading.resolve(spec) for name, spec in node.extra_specs().items()}
    args = dict(node.backend_args())
    if extras:
        args["extra_models"] = {name: str(m.path) for name, m in extras.items()}
    images = [Image({"objectid": hashlib.sha256(f.read_bytes()).hexdigest()}) for f in files]
    items = [
        WorkItem(i, str(f), node.work_data(image))
        for i, (f, image) in enumerate(zip(files, images, strict=True))
    ]
    results: dict[int, Any] = {}
    runtime.run_model(
        node.backend,
        args,
        model,
        items,
        batch_size=node.model_batch_size,
        settings=node.device_settings,
        log=log or logging.getLogger("model-node-test"),
        on_results=lambda batch: results.update(batch),
    )
    return {files[i].name: node.outcome(images[i], value, model) for i, value in results.items()}
