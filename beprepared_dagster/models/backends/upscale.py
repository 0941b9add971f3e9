"""Super-resolution models (SwinIR, Real-ESRGAN/ESRGAN and the rest of spandrel's permissive architectures)
loaded from their weights files by `spandrel`, run tile by tile (`tiling.py`), then Lanczos to the exact size
the node asks for.

spandrel's package imports two architectures we never use (LaMa, RestoreFormer) that import torchvision at
module level. torchvision is optional here (CPU-only installs have no matching build), so when it cannot be
imported, spandrel is imported with a placeholder `torchvision` that raises if those two are ever called, and
the placeholder is removed again right after (nothing else in the process sees it).
"""

from __future__ import annotations

import sys
import traceback
import types
from pathlib import Path
from typing import Any

from beprepared_dagster.errors import BeprepareError
from beprepared_dagster.models.api import Backend, ItemError, WorkItem
from beprepared_dagster.models.backends.tiling import run_tiled
from beprepared_dagster.models.devices import is_oom, memory_note, torch_dtype

SPANDREL_INSTALL = "pip install --no-deps spandrel==0.4.2 einops  # --no-deps: see pyproject.toml"


class UpscaleModelError(BeprepareError):
    """A weights file that spandrel cannot load as a super-resolution model, or one that does not fit."""


def import_spandrel() -> Any:
    """The `spandrel` module, importable without torchvision (see the module docstring)."""
    try:
        import spandrel

        return spandrel
    except (ImportError, OSError, RuntimeError) as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name == "spandrel":
            raise BeprepareError(f"model upscaling needs spandrel: {SPANDREL_INSTALL}") from None
        if not _from_torchvision(exc):
            raise
    return _import_with_placeholder()


def _from_torchvision(exc: BaseException) -> bool:
    """Missing, or built for another torch (a CUDA build without its libraries raises OSError)."""
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").startswith("torchvision"):
        return True
    return any("torchvision" in frame.filename for frame in traceback.extract_tb(exc.__traceback__))


def _import_with_placeholder() -> Any:
    for name in [n for n in sys.modules if n == "spandrel" or n.startswith(("spandrel.", "torchvision"))]:
        del sys.modules[name]  # the half-imported modules of the failed attempt
    placeholder = _placeholder_torchvision()
    sys.modules.update(placeholder)
    try:
        import spandrel
    finally:
        for name, module in placeholder.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    return spandrel


def _placeholder_torchvision() -> dict[str, types.ModuleType]:
    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise BeprepareError("this spandrel architecture needs torchvision, which is not installed")

    root, transforms, functional = (
        types.ModuleType(n)
        for n in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")
    )
    functional.normalize = functional.rotate = unavailable  # type: ignore[attr-defined]
    functional.InterpolationMode = type("InterpolationMode", (), {})  # type: ignore[attr-defined]
    root.transforms, transforms.functional = transforms, functional  # type: ignore[attr-defined]
    return {m.__name__: m for m in (root, transforms, functional)}


def load_descriptor(path: Path, device: str = "cpu") -> Any:
    """spandrel's `ImageModelDescriptor` for a weights file, on `device`, in eval mode.

    Raises:
        UpscaleModelError: naming the file when it is missing or not an image-to-image model spandrel knows.
    """
    spandrel = import_spandrel()
    if not path.is_file():
        raise UpscaleModelError(f"upscaling weights file {path} does not exist")
    try:
        descriptor = spandrel.ModelLoader(device=device).load_from_file(str(path))
    except spandrel.UnsupportedModelError:
        raise UpscaleModelError(
            f"{path} is not a super-resolution model spandrel recognises (SwinIR, ESRGAN/Real-ESRGAN, HAT…)"
        ) from None
    except Exception as exc:
        raise UpscaleModelError(f"{path} could not be loaded: {type(exc).__name__}: {exc}") from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or descriptor.input_channels != 3:
        raise UpscaleModelError(f"{path} holds a {descriptor.architecture.name} model, not an RGB upscaler")
    return descriptor.eval()


class UpscaleBackend(Backend):
    """Args (from the node): weights (the file name inside the model folder), tile, tile_overlap.
    Per image (`WorkItem.data`): size, the final [width, height], or absent for an image left as it is."""

    def load(self) -> None:
        import torch

        self.net = load_descriptor(self.model.path / self.args["weights"], self.device)
        wanted = torch_dtype(self.dtype)
        supported = {torch.float16: self.net.supports_half, torch.bfloat16: self.net.supports_bfloat16}
        self.torch_dtype = wanted if supported.get(wanted, True) else torch.float32
        self.net.to(self.torch_dtype)

    def prepare(self, image: Any, item: WorkItem) -> Any:
        return image, item

    def run(self, batch: list[Any]) -> list[Any]:
        return [self._one(image, item) for image, item in batch]

    def _one(self, image: Any, item: WorkItem) -> Any:
        from PIL import Image

        size = item.data.get("size")
        if not size:
            return None
        try:
            upscaled = self.upscale(image)
        except Exception as exc:
            if is_oom(exc):
                raise UpscaleModelError(
                    f"tile={self.args['tile']} does not fit on {self.device}{memory_note(self.device)}: "
                    "use a smaller tile="
                ) from None
            return ItemError(f"upscaling failed: {type(exc).__name__}: {exc}")
        return upscaled.resize(tuple(size), Image.Resampling.LANCZOS)

    def upscale(self, image: Any) -> Any:
        """The model's output for a PIL RGB image, as a PIL RGB image `scale` times larger."""
        import numpy as np
        import torch
        from PIL import Image

        array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        tensor = torch.from_numpy(array).permute(2, 0, 1)[None].to(self.device, self.torch_dtype)
        with torch.inference_mode():
            out = run_tiled(self.net, tensor, self.net.scale, self.args["tile"], self.args["tile_overlap"])
        pixels = (out[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
        return Image.fromarray(pixels, "RGB")

    def close(self) -> None:
        self.net = None
