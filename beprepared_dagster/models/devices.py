"""Which devices and dtype a model runs on, out-of-memory detection, freeing memory.

Every visible GPU by default (or `devices=[…]`); without one, the CPU, with one warning per process that says
how slow that is. bfloat16 on GPUs, float32 on the CPU, unless `dtype=` says otherwise.
"""

from __future__ import annotations

import gc
from typing import Any

from beprepared_dagster.errors import BeprepareError
from beprepared_dagster.models.api import DeviceSettings

_warned_cpu = False
CPU_WARNING = (
    "no CUDA GPU is visible: running the model on the CPU. Expect tens of seconds per image for "
    "7B+ vision-language models (a GPU does several images per second); fine for tiny models and tests"
)


class DeviceError(BeprepareError):
    """A device, dtype or quantization setting that cannot work here."""


def visible_gpus() -> list[str]:
    import torch

    return [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def choose(settings: DeviceSettings, log: Any) -> tuple[list[str], str]:
    """The devices to use and the dtype name, validated.

    Raises:
        DeviceError: naming the parameter (`devices`, `dtype`, `quantize`) and what is possible here.
    """
    cpu_only = bool(settings.devices) and all(d == "cpu" for d in settings.devices)
    gpus = [] if cpu_only else visible_gpus()  # CPU-only (e.g. ONNX) stages need not import torch
    if settings.devices:
        devices = list(settings.devices)
        for device in devices:
            if device != "cpu" and device not in gpus:
                raise DeviceError(
                    f"devices={devices!r}: {device!r} is not available here; visible: {gpus or ['cpu']}"
                )
    else:
        devices = gpus or ["cpu"]
    on_gpu = devices[0].startswith("cuda")
    if not on_gpu:
        _warn_cpu(log)
    if settings.quantize and not on_gpu:
        raise DeviceError(
            f"quantize={settings.quantize!r} needs a CUDA GPU (bitsandbytes); none is used here. "
            "Leave quantize=None on the CPU"
        )
    if settings.quantize:
        _check_bitsandbytes()
    dtype = settings.dtype or ("bfloat16" if on_gpu else "float32")
    return devices, dtype


def _warn_cpu(log: Any) -> None:
    global _warned_cpu
    if not _warned_cpu:
        _warned_cpu = True
        log.warning(CPU_WARNING)


def _check_bitsandbytes() -> None:
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise DeviceError("quantize= needs bitsandbytes: pip install 'beprepared-dagster[quant]'") from None


def torch_dtype(name: str) -> Any:
    import torch

    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]


def is_oom(exc: BaseException) -> bool:
    """Whether `exc` is a device out-of-memory error (CUDA's, or a RuntimeError saying so)."""
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return isinstance(exc, RuntimeError | MemoryError) and "out of memory" in str(exc).lower()


def memory_note(device: str) -> str:
    """', 12.1 GiB free of 24.0 GiB on cuda:0' when known, else ''."""
    if not device.startswith("cuda"):
        return ""
    try:
        import torch

        free, total = torch.cuda.mem_get_info(torch.device(device))
    except Exception:
        return ""
    return f" ({free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB on {device})"


def free_memory(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
