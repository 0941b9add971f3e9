"""onnxruntime sessions for the ONNX backends (the WD taggers, NudeNet): which execution provider a device
maps to, and out-of-memory errors the runtime's batch back-off recognises.

`cuda:N` runs on onnxruntime's CUDA provider when the installed onnxruntime has one (the `onnxruntime-gpu`
package); the plain `onnxruntime` package has none, so the model then runs on the CPU, with one warning that
says how to get the GPU. onnxruntime is imported here, inside the functions, never at package import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from beprepared_dagster.errors import BeprepareError

_OOM_WORDS = ("out of memory", "failed to allocate", "bad_alloc")
_warned_no_cuda = False


def providers(device: str, log: Any) -> list[Any]:
    """onnxruntime providers for a device name ("cpu", "cuda:1"), the CPU always last as the fallback."""
    import onnxruntime

    if not device.startswith("cuda"):
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        index = int(device.partition(":")[2] or 0)
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    _warn_no_cuda(device, log)
    return ["CPUExecutionProvider"]


def _warn_no_cuda(device: str, log: Any) -> None:
    global _warned_no_cuda
    if not _warned_no_cuda:
        _warned_no_cuda = True
        log.warning(
            f"{device} was chosen but the installed onnxruntime has no CUDA provider: the ONNX model runs on "
            "the CPU. For the GPU: pip uninstall onnxruntime && pip install onnxruntime-gpu"
        )


def open_session(path: Path, device: str, log: Any) -> Any:
    """An `InferenceSession` for `path` on `device`.

    Raises:
        BeprepareError: naming the file when onnxruntime cannot read it as a model.
    """
    import onnxruntime

    try:
        return onnxruntime.InferenceSession(str(path), providers=providers(device, log))
    except Exception as exc:
        raise BeprepareError(f"{path} is not a model onnxruntime can load: {_first_line(exc)}") from None


def run(session: Any, feeds: dict[str, Any]) -> list[Any]:
    """`session.run(None, feeds)`, with device out-of-memory errors raised as RuntimeError("out of memory …")
    so the runtime halves the batch and retries."""
    try:
        return session.run(None, feeds)
    except Exception as exc:
        text = str(exc).lower()
        if any(word in text for word in _OOM_WORDS):
            raise RuntimeError(f"out of memory: {_first_line(exc)}") from exc
        raise


def fixed_dim(value: Any) -> int | None:
    """A dimension of an input shape as an int, or None when it is symbolic ("batch", "N") or unknown."""
    return value if isinstance(value, int) and value > 0 else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
