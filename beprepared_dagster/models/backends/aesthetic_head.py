"""LAION aesthetic heads: linear or MLP regressors on L2-normalised CLIP ViT-L/14 image embeddings.

Layouts read (weights only; `.pth` / `.bin` through `torch.load(weights_only=True)`, never a full unpickle):

- v1, LAION `sa_0_4_vit_l_14_linear.pth`: a bare `nn.Linear(768, 1)` (`weight`, `bias`); the same head inside
  `shunk031/aesthetics-predictor-v1-vit-large-patch14` as `predictor.weight` / `predictor.bias` (the original's).
- v2, christophschuhmann's improved predictor (`sac+logos+ava1-l14-linearMSE.pth` …, and the
  `shunk031/aesthetics-predictor-v2-*` checkpoints): `layers.{0,2,4,6,7}` (768→1024→128→64→16→1, no
  activations; dropout between), or the ReLU variant `layers.{0,3,6,9,11}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beprepared_dagster.models.loading import ModelNotFound

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")
_LINEAR_V2 = [0, 2, 4, 6, 7]
_RELU_V2 = [0, 3, 6, 9, 11]
_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.weight$")


@dataclass
class Head:
    """A stack of linear layers (float32 numpy), ReLU between them when `relu`."""

    layers: list[tuple[Any, Any]]
    relu: bool = False
    source: str = ""

    @property
    def in_features(self) -> int:
        return int(self.layers[0][0].shape[1])

    def score(self, embeddings: Any) -> Any:
        """One score per row of an (n, in_features) matrix of normalised embeddings."""
        import numpy as np

        x = np.asarray(embeddings, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"the aesthetic head takes {self.in_features}-d embeddings, got shape {x.shape}")
        for k, (weight, bias) in enumerate(self.layers):
            x = x @ weight.T + bias
            if self.relu and k < len(self.layers) - 1:
                x = np.maximum(x, 0)
        return x[:, 0]


def weight_files(folder: Path) -> list[Path]:
    found = [p for p in sorted(folder.iterdir()) if p.suffix in WEIGHT_SUFFIXES and p.is_file()]
    return sorted(found, key=lambda p: p.suffix != ".safetensors")  # safetensors first


def load_head(location: str | Path, file: str | None = None) -> Head:
    """The head in a file, or in the weight files of a folder.

    Raises:
        ModelNotFound: no weight file, or no known head layout in it (naming what was looked for).
    """
    path = Path(location).expanduser()
    candidates = [path / file] if file else ([path] if path.is_file() else weight_files(path))
    if not candidates:
        raise ModelNotFound(
            f"{path} holds no aesthetic head: missing a weight file ({', '.join(WEIGHT_SUFFIXES)})"
        )
    for candidate in candidates:
        head = _from_tensors(_read_head_tensors(candidate), str(candidate))
        if head is not None:
            return head
    raise ModelNotFound(
        f"{path}: no aesthetic head in {', '.join(c.name for c in candidates)}: expected `predictor.weight` "
        "(v1), a bare `weight`/`bias` linear (LAION .pth) or `layers.N.weight` (v2 MLP)"
    )


def _read_head_tensors(path: Path) -> dict[str, Any]:
    """Head-looking tensors of one file as float32 numpy arrays (a big checkpoint is not read whole)."""
    wanted = re.compile(r"(^|\.)(predictor\.(weight|bias)|layers\.\d+\.(weight|bias))$|^(weight|bias)$")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            return {k: handle.get_tensor(k).float().numpy() for k in handle.keys() if wanted.search(k)}  # noqa: SIM118
    import torch

    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelNotFound(
            f"{path} is not a weights-only PyTorch file: {type(exc).__name__}: {exc}"
        ) from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise ModelNotFound(f"{path} holds a {type(data).__name__}, not a state dict")
    return {k: v.float().numpy() for k, v in data.items() if hasattr(v, "float") and wanted.search(k)}


def _from_tensors(tensors: dict[str, Any], source: str) -> Head | None:
    for prefix in ("predictor.", ""):
        weight = next(
            (v for k, v in tensors.items() if k.endswith(f"{prefix}weight") and "layers" not in k), None
        )
        bias = next(
            (v for k, v in tensors.items() if k.endswith(f"{prefix}bias") and "layers" not in k), None
        )
        if weight is not None and bias is not None and weight.ndim == 2 and weight.shape[0] == 1:
            return Head([(weight, bias)], False, source)
    layers: dict[int, str] = {}
    for key in tensors:
        match = _LAYER.search(key)
        if match:
            layers[int(match.group(1))] = key[: -len("weight")]
    indices = sorted(layers)
    if not indices:
        return None
    if indices not in (_LINEAR_V2, _RELU_V2):
        raise ModelNotFound(
            f"{source}: an MLP head with layers {indices}; known layouts are {_LINEAR_V2} (linear) and "
            f"{_RELU_V2} (ReLU)"
        )
    stack = [(tensors[layers[i] + "weight"], tensors[layers[i] + "bias"]) for i in indices]
    return Head(stack, indices == _RELU_V2, source)
