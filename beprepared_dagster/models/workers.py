"""Several devices: one worker process per device over one queue of batches.

Each worker loads the model once on its device and takes batches until the queue is empty; results come
back per batch and the caller stores them as they arrive. If any worker fails (an exception or a crash), every
other worker is terminated and joined before the error is raised with that worker's device, so no process is
left holding a GPU. Messages are plain dicts and lists (spawn start method: nothing inherits CUDA state).
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import traceback
from typing import Any

from beprepared_dagster.errors import BeprepareError
from beprepared_dagster.models.api import ItemError, ResolvedModel, WorkItem

POLL_SECONDS = 0.5


class WorkerFailed(BeprepareError):
    """A worker process raised or died; the others were stopped."""


def run_workers(
    backend: str,
    args: dict[str, Any],
    model: ResolvedModel,
    items: list[WorkItem],
    devices: list[str],
    dtype: str,
    quantize: str | None,
    batch_size: int,
    log: Any,
    on_results: Any,
) -> None:
    context = mp.get_context("spawn")
    tasks, results = context.Queue(), context.Queue()
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    for batch in batches:
        tasks.put([{"index": it.index, "path": it.path, "data": it.data} for it in batch])
    for _ in devices:
        tasks.put(None)
    spec = {
        "backend": backend,
        "args": args,
        "model": _model_dict(model),
        "dtype": dtype,
        "quantize": quantize,
    }
    workers = [
        context.Process(target=_worker, args=(device, spec, batch_size, tasks, results), daemon=True)
        for device in devices
    ]
    log.info(f"{len(batches)} batch(es) over {len(devices)} worker(s): {', '.join(devices)}")
    for worker in workers:
        worker.start()
    try:
        _collect(workers, devices, results, len(batches), log, on_results)
    finally:
        _stop(workers)
        for q in (tasks, results):
            q.cancel_join_thread()
            q.close()


def _collect(
    workers: list, devices: list[str], results: Any, expected: int, log: Any, on_results: Any
) -> None:
    done = 0
    while done < expected:
        try:
            message = results.get(timeout=POLL_SECONDS)
        except queue.Empty:
            for worker, device in zip(workers, devices, strict=True):
                if not worker.is_alive() and worker.exitcode not in (0, None):
                    raise WorkerFailed(f"the worker on {device} died (exit code {worker.exitcode})") from None
            continue
        kind = message["kind"]
        if kind == "log":
            getattr(log, message["level"])(f"[{message['device']}] {message['text']}")
        elif kind == "error":
            log.error(f"[{message['device']}] {message['traceback']}")
            raise WorkerFailed(f"the worker on {message['device']} failed: {message['error']}")
        else:
            on_results([(index, _from_wire(value)) for index, value in message["results"]])
            done += 1


def _stop(workers: list) -> None:
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    for worker in workers:
        worker.join(timeout=10)
        if worker.is_alive():  # pragma: no cover - terminate did not take
            worker.kill()
            worker.join(timeout=5)


class _QueueLog:
    def __init__(self, device: str, results: Any) -> None:
        self.device, self.results = device, results

    def _send(self, level: str, text: str) -> None:
        self.results.put({"kind": "log", "device": self.device, "level": level, "text": str(text)})

    def info(self, text: str) -> None:
        self._send("info", text)

    def warning(self, text: str) -> None:
        self._send("warning", text)

    def error(self, text: str) -> None:
        self._send("error", text)


def _worker(device: str, spec: dict, batch_size: int, tasks: Any, results: Any) -> None:
    from beprepared_dagster.models import devices as layer
    from beprepared_dagster.models.runtime import build, run_batches

    log = _QueueLog(device, results)
    engine = None
    try:
        engine = build(
            spec["backend"],
            spec["args"],
            _model_from(spec["model"]),
            device,
            spec["dtype"],
            spec["quantize"],
            log,
        )
        while (batch := tasks.get()) is not None:
            items = [WorkItem(b["index"], b["path"], b["data"]) for b in batch]
            out = [pair for chunk in run_batches(engine, items, batch_size, log, layer) for pair in chunk]
            results.put({"kind": "results", "results": [(i, _to_wire(v)) for i, v in out]})
    except BaseException as exc:  # reported to the parent, which stops everyone
        results.put(
            {
                "kind": "error",
                "device": device,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        )
    finally:
        if engine is not None:
            engine.close()
        layer.free_memory(device)


def _to_wire(value: Any) -> Any:
    if isinstance(value, ItemError):
        return {"__item_error__": value.reason, "bad_image": value.bad_image}
    return value


def _from_wire(value: Any) -> Any:
    if isinstance(value, dict) and "__item_error__" in value:
        return ItemError(value["__item_error__"], bool(value.get("bad_image")))
    return value


def _model_dict(model: ResolvedModel) -> dict:
    from dataclasses import asdict

    return {"spec": asdict(model.spec), "path": str(model.path), "commit": model.commit}


def _model_from(data: dict) -> ResolvedModel:
    from pathlib import Path

    from beprepared_dagster.models.api import ModelSpec

    spec = dict(data["spec"])
    spec["required_files"] = tuple(spec["required_files"])
    if spec.get("allow_patterns") is not None:
        spec["allow_patterns"] = tuple(spec["allow_patterns"])
    return ResolvedModel(ModelSpec(**spec), Path(data["path"]), data["commit"])
