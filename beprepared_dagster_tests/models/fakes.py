"""Fake backends and device layers for runtime tests (importable by spawned worker processes)."""

from __future__ import annotations

import os
import time
from typing import Any

from beprepared_dagster.models import devices
from beprepared_dagster.models.api import Backend, DeviceSettings


class SizeBackend(Backend):
    """ "Captions" an image with its size, seed and the process id that computed it."""

    def load(self) -> None:
        self.loaded = True

    def run(self, batch: list[Any]) -> list[Any]:
        fail_at = self.args.get("oom_above")
        if fail_at is not None and len(batch) > fail_at:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        time.sleep(self.args.get("delay", 0))
        crash = self.args.get("crash_on")
        if crash is not None and any(item.index == crash for _, item in batch):
            raise ValueError(f"boom on item {crash}")
        return [
            f"{image.size[0]}x{image.size[1]} seed={item.data.get('seed')} pid={os.getpid()}"
            for image, item in batch
        ]


class TwoCpus:
    """A device layer with two CPU "devices": exercises the multi-worker path without GPUs."""

    choose_calls = 0

    @staticmethod
    def choose(settings: DeviceSettings, log: Any) -> tuple[list[str], str]:
        TwoCpus.choose_calls += 1
        return ["cpu", "cpu"], "float32"

    is_oom = staticmethod(devices.is_oom)
    free_memory = staticmethod(devices.free_memory)
    memory_note = staticmethod(devices.memory_note)
