"""Small classifiers on image embeddings: an MLP (in → 128 → 64 → 32 → out, ReLU + dropout, as the original's
SmartHumanFilter) trained with Adam, early-stopped on a validation split, and judged on a held-out split that
training never saw (neither gradients nor early stopping).

The original upsampled the minority class *before* splitting, so copies of validation images sat in the
training set, and reported its "test" accuracy on that validation split. Here the held-out split is taken
first, stratified per class; imbalance is handled with class weights in the loss on the training split only.

A trained model is plain float32 arrays (numpy forward, no torch needed to predict) and serialises to
safetensors bytes with its classes in the header: no pickle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

HIDDEN = (128, 64, 32)


@dataclass(frozen=True)
class TrainSettings:
    """The hyperparameters; part of a stored model's key."""

    learning_rate: float = 1e-3
    batch_size: int = 128
    epochs: int = 500
    patience: int = 20
    dropout: float = 0.5
    test_fraction: float = 0.2
    val_fraction: float = 0.2
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class Classifier:
    """Linear layers as (weight, bias) float32 arrays; softmax over `classes`, or one sigmoid per class when
    `multilabel`."""

    layers: list[tuple[Any, Any]]
    classes: list[str]
    multilabel: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    def predict_proba(self, x: Any) -> Any:
        import numpy as np

        h = np.asarray(x, dtype=np.float32)
        for k, (weight, bias) in enumerate(self.layers):
            h = h @ weight.T + bias
            if k < len(self.layers) - 1:
                h = np.maximum(h, 0)
        if self.multilabel:
            return 1 / (1 + np.exp(-h))
        h = h - h.max(axis=1, keepdims=True)
        e = np.exp(h)
        return e / e.sum(axis=1, keepdims=True)

    def to_bytes(self) -> bytes:
        from safetensors.numpy import save

        tensors = {}
        for k, (weight, bias) in enumerate(self.layers):
            tensors[f"layers.{k}.weight"], tensors[f"layers.{k}.bias"] = weight, bias
        header = {"classes": json.dumps(self.classes), "multilabel": json.dumps(self.multilabel)}
        header["info"] = json.dumps(self.info, sort_keys=True)
        return save(tensors, metadata=header)

    @classmethod
    def from_bytes(cls, data: bytes) -> Classifier:
        from safetensors.numpy import load

        tensors = load(data)
        layers = [
            (tensors[f"layers.{k}.weight"], tensors[f"layers.{k}.bias"]) for k in range(len(tensors) // 2)
        ]
        size = int.from_bytes(data[:8], "little")  # safetensors: u64 header length, then the JSON header
        header = json.loads(data[8 : 8 + size]).get("__metadata__") or {}
        return cls(
            layers,
            json.loads(header["classes"]),
            json.loads(header.get("multilabel", "false")),
            json.loads(header.get("info", "{}")),
        )


def split(labels: Any, settings: TrainSettings) -> tuple[Any, Any, Any]:
    """(train, val, test) index arrays, stratified by the rows of `labels` (a class per row, or for several
    tags their pattern); every class with at least 3 examples gets at least one of each."""
    import numpy as np

    rng = np.random.default_rng(settings.seed)
    keys = [tuple(np.atleast_1d(row).tolist()) for row in labels]
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    train, val, test = [], [], []
    for members in groups.values():
        members = list(rng.permutation(members))
        n = len(members)
        n_test = max(1, round(n * settings.test_fraction)) if n >= 3 else 0
        n_val = max(1, round((n - n_test) * settings.val_fraction)) if n >= 3 else 0
        test += members[:n_test]
        val += members[n_test : n_test + n_val]
        train += members[n_test + n_val :]
    return (
        np.array(sorted(train), dtype=int),
        np.array(sorted(val), dtype=int),
        np.array(sorted(test), dtype=int),
    )


def train(
    x: Any, y: Any, classes: list[str], settings: TrainSettings, multilabel: bool = False
) -> Classifier:
    """Fit on the training split, keep the epoch with the best validation loss (stop after `patience`
    epochs without improvement). `y`: class indices, or an (n, classes) 0/1 matrix when `multilabel`.
    The held-out indices are recorded in `info["test"]`; this function never looks at them."""
    import numpy as np
    import torch

    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    train_idx, val_idx, test_idx = split(y, settings)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a net this small trains fastest (and reproducibly) on one thread
    try:
        layers, info = _fit(x, y, len(classes), multilabel, settings, train_idx, val_idx)
    finally:
        torch.set_num_threads(threads)
    info["test"] = test_idx.tolist()
    return Classifier(layers, list(classes), multilabel, info)


def _fit(
    x: Any, y: Any, outputs: int, multilabel: bool, settings: TrainSettings, train_idx: Any, val_idx: Any
) -> Any:
    import numpy as np
    import torch

    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    net = _mlp(x.shape[1], outputs, settings.dropout)
    loss_fn = _loss(y[train_idx], outputs, multilabel)
    optimiser = torch.optim.Adam(net.parameters(), lr=settings.learning_rate)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.float32 if multilabel else np.int64))
    best, best_state, best_epoch, waited, epoch = float("inf"), None, 0, 0, 0
    for epoch in range(1, settings.epochs + 1):
        net.train()
        order = torch.from_numpy(train_idx)[torch.randperm(len(train_idx), generator=generator)]
        for start in range(0, len(order), settings.batch_size):
            batch = order[start : start + settings.batch_size]
            optimiser.zero_grad()
            loss_fn(net(xt[batch]), yt[batch]).backward()
            optimiser.step()
        score = _validation_loss(net, loss_fn, xt, yt, val_idx if len(val_idx) else train_idx)
        if score < best - 1e-6:
            best, best_epoch, waited = score, epoch, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            waited += 1
            if waited >= settings.patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    layers = [
        (m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy())
        for m in net
        if isinstance(m, torch.nn.Linear)
    ]
    info = {"epochs": epoch, "best_epoch": best_epoch, "val_loss": round(best, 6), "train": len(train_idx)}
    return layers, {**info, "val": len(val_idx)}


def _mlp(inputs: int, outputs: int, dropout: float) -> Any:
    import torch.nn as nn

    sizes = [inputs, *HIDDEN]
    parts: list[Any] = []
    for a, b in zip(sizes, sizes[1:], strict=False):
        parts += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*parts, nn.Linear(sizes[-1], outputs))


def _loss(y_train: Any, classes: int, multilabel: bool) -> Any:
    """Class-weighted: each class (or each tag's positives) counts as much as the others."""
    import numpy as np
    import torch

    if multilabel:
        positives = y_train.sum(axis=0)
        negatives = len(y_train) - positives
        weight = torch.tensor(
            np.where(positives > 0, negatives / np.maximum(positives, 1), 1.0), dtype=torch.float32
        )
        return torch.nn.BCEWithLogitsLoss(pos_weight=weight)
    counts = np.bincount(y_train, minlength=classes).astype(np.float32)
    weight = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / classes, 0.0)
    return torch.nn.CrossEntropyLoss(weight=torch.tensor(weight, dtype=torch.float32))


def _validation_loss(net: Any, loss_fn: Any, x: Any, y: Any, idx: Any) -> float:
    import torch

    net.eval()
    with torch.inference_mode():
        return float(loss_fn(net(x[torch.from_numpy(idx)]), y[torch.from_numpy(idx)]))
