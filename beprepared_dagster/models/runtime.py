"""Run a model over work items: load once, decode ahead on a thread pool, batch, back off on out-of-memory,
and hand results back batch by batch (the caller stores each batch at once, so a killed run loses at most a
batch per device).

One device runs in this process; several devices get one worker process each (`workers.py`).
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from beprepared_dagster.errors import BadImage, BeprepareError
from beprepared_dagster.models import devices as device_layer_default
from beprepared_dagster.models.api import (
    Backend,
    DeviceSettings,
    ItemError,
    ResolvedModel,
    WorkItem,
    backend_class,
)

OnResults = Callable[[list[tuple[int, Any]]], None]
# How often the runtime loaded a model and ran a batch in this process: tests assert "no model call".
CALLS: Counter = Counter()
_DECODE_THREADS = max(2, min(8, (os.cpu_count() or 2)))


class ModelDoesNotFit(BeprepareError):
    """Out of memory even at batch size 1."""


def run_model(
    backend: str,
    args: dict[str, Any],
    model: ResolvedModel,
    items: list[WorkItem],
    *,
    batch_size: int,
    settings: DeviceSettings,
    log: Any,
    on_results: OnResults,
    device_layer: Any = None,
) -> None:
    """Compute every item with `backend` on the chosen devices; `on_results` gets each finished batch as
    `[(item.index, result or ItemError), ...]`, in this thread.

    Raises:
        BeprepareError: bad device settings, a model that does not fit, a failed worker (with its device).
    """
    if not items:
        return
    layer = device_layer or device_layer_default
    devices, dtype = layer.choose(settings, log)
    if model.spec.trust_remote_code:
        log.warning(f"{model.label}: trust_remote_code=True, running the checkpoint's own Python code")
    if len(devices) > 1 and len(items) > batch_size:
        from beprepared_dagster.models.workers import run_workers

        run_workers(
            backend, args, model, items, devices, dtype, settings.quantize, batch_size, log, on_results
        )
        return
    engine = build(backend, args, model, devices[0], dtype, settings.quantize, log)
    try:
        for results in run_batches(engine, items, batch_size, log, layer):
            on_results(results)
    finally:
        engine.close()
        layer.free_memory(devices[0])


def build(
    backend: str,
    args: dict[str, Any],
    model: ResolvedModel,
    device: str,
    dtype: str,
    quantize: str | None,
    log: Any,
) -> Backend:
    engine = backend_class(backend)(model, device, dtype, quantize, **args)
    log.info(f"loading {model.label} on {device} ({dtype}{', ' + quantize if quantize else ''})")
    engine.load()
    CALLS["load"] += 1
    return engine


def run_batches(
    engine: Backend, items: list[WorkItem], batch_size: int, log: Any, layer: Any = None
) -> Iterator[list[tuple[int, Any]]]:
    """Results per batch; images are decoded and prepared up to two batches ahead while the device works."""
    layer = layer or device_layer_default
    size = max(1, batch_size)
    with ThreadPoolExecutor(_DECODE_THREADS, thread_name_prefix="decode") as pool:
        pending = _Prefetch(pool, engine, items, ahead=2 * size)
        while pending.more():
            batch = pending.take(size)
            failed = [(item.index, out) for item, out in batch if isinstance(out, ItemError)]
            good = [(item, out) for item, out in batch if not isinstance(out, ItemError)]
            for item, error in [(i, o) for i, o in batch if isinstance(o, ItemError)]:
                log.warning(f"{item.path}: {error.reason}")
            results, size = _run_with_backoff(engine, good, size, log, layer)
            yield failed + results


class _Prefetch:
    """Prepared inputs in item order, `ahead` items in flight on the pool."""

    def __init__(self, pool: ThreadPoolExecutor, engine: Backend, items: list[WorkItem], ahead: int) -> None:
        self.pool, self.engine, self.items, self.ahead = pool, engine, items, ahead
        self.next = 0
        self.futures: list[tuple[WorkItem, Future]] = []
        self._fill()

    def _fill(self) -> None:
        while len(self.futures) < self.ahead and self.next < len(self.items):
            item = self.items[self.next]
            self.futures.append((item, self.pool.submit(prepare, self.engine, item)))
            self.next += 1

    def more(self) -> bool:
        return bool(self.futures)

    def take(self, n: int) -> list[tuple[WorkItem, Any]]:
        taken, self.futures = self.futures[:n], self.futures[n:]
        self.ahead = max(self.ahead, 2 * n)
        self._fill()
        return [(item, future.result()) for item, future in taken]


def prepare(engine: Backend, item: WorkItem) -> Any:
    """Decode one file (EXIF orientation applied, RGB) and let the backend prepare it; an ItemError for a
    file that is not a usable image."""
    from beprepared_dagster.nodes import imaging

    try:
        with open(item.path, "rb") as handle:
            data = handle.read()
        image = imaging.open_image(data, item.path)
        image.load()
        image = _upright_rgb(image)
    except BadImage as exc:
        return ItemError(str(exc), bad_image=True)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        return ItemError(f"corrupt or unreadable image: {exc}", bad_image=True)
    return engine.prepare(image, item)


def _upright_rgb(image: Any) -> Any:
    from PIL import ImageOps

    with contextlib.suppress(Exception):  # a broken EXIF block must not cost the image
        image = ImageOps.exif_transpose(image)
    return image.convert("RGB")


def _run_with_backoff(
    engine: Backend, batch: list[tuple[WorkItem, Any]], size: int, log: Any, layer: Any
) -> tuple[list[tuple[int, Any]], int]:
    """Run `batch` in chunks of `size`, halving on out-of-memory (the smaller size is kept afterwards)."""
    results: list[tuple[int, Any]] = []
    start = 0
    while start < len(batch):
        chunk = batch[start : start + size]
        try:
            outputs = engine.run([prepared for _, prepared in chunk])
        except Exception as exc:
            if not layer.is_oom(exc):
                raise
            layer.free_memory(engine.device)
            if size == 1:
                raise ModelDoesNotFit(
                    f"{engine.model.label} does not fit on {engine.device} even one image at a time"
                    f"{layer.memory_note(engine.device)}: try quantize='4bit', dtype='float16' or a smaller model"
                ) from None
            log.warning(f"out of memory at batch {size} on {engine.device}; retrying with {size // 2}")
            size //= 2
            continue
        CALLS["batches"] += 1
        if len(outputs) != len(chunk):
            raise BeprepareError(
                f"{type(engine).__name__} returned {len(outputs)} results for {len(chunk)} images"
            )
        results.extend((item.index, out) for (item, _), out in zip(chunk, outputs, strict=True))
        start += len(chunk)
    return results, size
