"""SmartHumanFilter: a person labels in the HumanFilter tab until each class has enough labels; a small MLP on
the images' CLIP embeddings is trained, judged on a held-out split, and decides the images nobody labeled.

Human labels always win: a labeled image gets its label's outcome, and predictions are never written to the
label journal (they are rows of this stage, marked `passed_smart_filter` / "predicted"). Every run with new
labels trains again (the model is stored by a key over its hyperparameters and the labels it saw, so the same
labels never train twice). Until the model may decide (too few labels, too few images, held-out accuracy
below `min_accuracy`) the unlabeled images wait in the tab like HumanFilter's, and the reason says what is
missing. See `learning/` for the training and `orchestration/stage_smart.py` for the stage.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from beprepared_dagster.nodes.base import HumanNode, Image, Outcome
from beprepared_dagster.nodes.human import _check_domain
from beprepared_dagster.store.embeddings import REF_KEY

WHEN_UNCERTAIN = ("reject", "accept", "human")
TRAIN_PARAMS = ("learning_rate", "batch_size", "epochs", "patience", "dropout", "seed")


@dataclass
class SmartResult:
    """Per image an Outcome, or a str: why it waits for a person. `summary` goes to the tab and metadata."""

    outcomes: list[Outcome | str]
    summary: dict[str, Any] = field(default_factory=dict)
    key: str | None = None


class SmartNode(HumanNode):
    """A human stage whose unlabeled images a model learned from its labels may decide (set-level)."""

    decides_unlabeled: ClassVar[bool] = True

    def _setup_smart(self, embedding: str, positive: dict[str, Any]) -> None:
        _check_domain(self.params["domain"])
        if not isinstance(embedding, str) or not embedding:
            raise ValueError(
                f"embedding must be the property ClipEmbed writes (e.g. 'clip'), got {embedding!r}"
            )
        for name, low in positive.items():
            value = self.params[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
                raise ValueError(f"{name} must be a number >= {low}, got {value!r}")

    def settings(self) -> Any:
        from beprepared_dagster.learning.classifier import TrainSettings

        return TrainSettings(**{k: self.params[k] for k in TRAIN_PARAMS})

    def model_key(self, images: list[Image], targets: list[Any]) -> str:
        """Digest of what the model depends on: node, hyperparameters, and each (embedding, label) pair."""
        prop = self.params["embedding"]
        pairs = sorted(
            json.dumps([image[prop][REF_KEY], image[prop]["objectid"], target], sort_keys=True)
            for image, target in zip(images, targets, strict=True)
        )
        payload = {"node": type(self).__name__, "version": self.version, "train": self.settings().to_json()}
        # What training and its stored held-out figures depend on (not thresholds applied afterwards).
        keyed = ("model_version", "domain", "min_confidence", "tags", "version", "target_precision")
        payload.update({k: self.params[k] for k in keyed if k in self.params})
        return hashlib.sha256(json.dumps([payload, pairs], sort_keys=True).encode()).hexdigest()

    def decide(
        self, images: list[Image], labels: list[Any], vectors: Any, models: Any, log: Any
    ) -> SmartResult:
        """Outcomes for every image (kept upstream), from its label or the model. `vectors`: their
        normalised embeddings, row-aligned; `models`: get(key) / put(key, node, domain, bytes, metrics)."""
        raise NotImplementedError


class SmartHumanFilter(SmartNode):
    """A person keeps or rejects images (domain `{domain}`) until a model trained on their CLIP embeddings can
    decide the rest.

    Args:
        domain: the label domain, shared with HumanFilter stages of the same domain (its tab).
        model_version: part of the model's key (bump to train afresh).
        min_images: the model decides only in datasets of at least this many images.
        min_per_class: human labels needed per class (kept and rejected) before training.
        learning_rate, batch_size, epochs, patience, dropout, seed: training (Adam, early stopping on a
            validation split; `patience` epochs without improvement stop it).
        min_confidence: a prediction below this probability is uncertain.
        min_accuracy: held-out accuracy the model needs before it decides anything.
        when_uncertain: "reject" (drop), "accept" (keep) or "human" (wait in the tab for a person).
        embedding: the property holding ClipEmbed's embedding reference.
    """

    kind = "filter"
    writes: ClassVar[tuple[str, ...]] = (
        "passed_human_filter",
        "passed_smart_filter",
        "smart_filter_confidence",
    )
    description: ClassVar[str] = (
        "A person keeps or rejects images (domain {domain}); a model trained on their labels decides the rest."
    )

    def __init__(
        self,
        domain: str = "default",
        model_version: str = "v1",
        min_images: int = 5000,
        min_per_class: int = 1000,
        learning_rate: float = 1e-3,
        batch_size: int = 128,
        epochs: int = 500,
        patience: int = 20,
        dropout: float = 0.5,
        min_confidence: float = 0.7,
        min_accuracy: float = 0.9,
        when_uncertain: str = "reject",
        embedding: str = "clip",
        seed: int = 0,
    ) -> None:
        if when_uncertain not in WHEN_UNCERTAIN:
            raise ValueError(f"when_uncertain={when_uncertain!r} is not one of {', '.join(WHEN_UNCERTAIN)}")
        for name in ("min_confidence", "min_accuracy", "dropout"):
            if not 0 <= self.params[name] <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {self.params[name]!r}")
        self._setup_smart(
            embedding,
            {
                "min_images": 0,
                "min_per_class": 1,
                "learning_rate": 1e-12,
                "batch_size": 1,
                "epochs": 1,
                "patience": 1,
            },
        )

    def outcome(self, image: Image, label: Mapping[str, Any] | None) -> Outcome | None:
        if label is None:
            return None
        if label.get("keep"):
            return Outcome.keep(passed_human_filter=True)
        return Outcome.reject(f"rejected by a person (domain {self.params['domain']})")

    def _not_ready(self, counts: dict[str, int], images: int) -> str | None:
        p = self.params
        if images < p["min_images"]:
            return (
                f"waiting for a label: the model decides only datasets of at least min_images={p['min_images']} "
                f"images (this one has {images})"
            )
        short = {c: p["min_per_class"] - n for c, n in counts.items() if n < p["min_per_class"]}
        if short:
            need = " and ".join(f"{n} more {'kept' if c == 'keep' else 'rejected'}" for c, n in short.items())
            return f"waiting for a label: the model trains after {need} label(s) (min_per_class={p['min_per_class']})"
        return None

    def decide(
        self, images: list[Image], labels: list[Any], vectors: Any, models: Any, log: Any
    ) -> SmartResult:
        from beprepared_dagster.learning.classifier import Classifier

        outcomes: list[Outcome | str | None] = [
            self.outcome(i, lab) for i, lab in zip(images, labels, strict=True)
        ]
        labeled = [k for k, lab in enumerate(labels) if lab is not None]
        targets = [1 if labels[k].get("keep") else 0 for k in labeled]
        counts = {"keep": sum(targets), "reject": len(targets) - sum(targets)}
        summary: dict[str, Any] = {"images": len(images), "labels": counts, "decided_by_model": 0}
        todo = [k for k, o in enumerate(outcomes) if o is None]
        problem = self._not_ready(counts, len(images))
        if problem:
            summary["waiting_because"] = problem
            return SmartResult([o if o is not None else problem for o in outcomes], summary)  # type: ignore[misc]
        key = self.model_key([images[k] for k in labeled], targets)
        stored = models.get(key)
        if stored is None:
            model, metrics = self._train(vectors[labeled], targets, log)
            models.put(key, type(self).__name__, self.params["domain"], model.to_bytes(), metrics)
        else:
            model, metrics = Classifier.from_bytes(stored[0]), stored[1]
        summary.update(metrics)
        if metrics["accuracy"] is None or metrics["accuracy"] < self.params["min_accuracy"]:
            why = (
                f"waiting for a label: the model's held-out accuracy {metrics['accuracy']} is below "
                f"min_accuracy={self.params['min_accuracy']}; label more images"
            )
            summary["waiting_because"] = why
            return SmartResult([o if o is not None else why for o in outcomes], summary, key)  # type: ignore[misc]
        uncertain = 0
        if todo:
            for k, p in zip(todo, model.predict_proba(vectors[todo])[:, 1].tolist(), strict=True):
                outcomes[k] = self._predicted(p)
                uncertain += max(p, 1 - p) < self.params["min_confidence"]
        decided = [outcomes[k] for k in todo]
        summary["decided_by_model"] = sum(1 for o in decided if isinstance(o, Outcome))
        summary["predicted_kept"] = sum(1 for o in decided if isinstance(o, Outcome) and o.kept)
        summary["uncertain"] = uncertain
        return SmartResult(outcomes, summary, key)  # type: ignore[arg-type]

    def _train(self, x: Any, targets: list[int], log: Any) -> tuple[Any, dict[str, Any]]:
        import numpy as np

        from beprepared_dagster.learning.classifier import train
        from beprepared_dagster.learning.evaluate import evaluate_classes

        y = np.array(targets)
        model = train(x, y, ["reject", "keep"], self.settings())
        test = np.array(model.info["test"], dtype=int)
        metrics = evaluate_classes(model, x[test], y[test], self.params["min_confidence"])
        metrics["training"] = {k: v for k, v in model.info.items() if k != "test"}
        log.info(
            f"SmartHumanFilter[{self.params['domain']}]: trained on {len(y)} labels; held-out accuracy "
            f"{metrics['accuracy']} on {metrics['held_out']} images"
        )
        return model, metrics

    def _predicted(self, p_keep: float) -> Outcome | str:
        confidence = max(p_keep, 1 - p_keep)
        p = self.params
        if confidence >= p["min_confidence"]:
            if p_keep >= 0.5:
                return Outcome.keep(passed_smart_filter=True, smart_filter_confidence=round(confidence, 4))
            return Outcome.reject(
                f"predicted reject (SmartHumanFilter, domain {p['domain']}, confidence {confidence:.2f})"
            )
        note = f"uncertain (confidence {confidence:.2f} < min_confidence {p['min_confidence']})"
        if p["when_uncertain"] == "human":
            return f"waiting for a label: the model is {note}"
        if p["when_uncertain"] == "accept":
            return Outcome.keep(passed_smart_filter=None, smart_filter_confidence=round(confidence, 4))
        return Outcome.reject(f"{note}: rejected (when_uncertain='reject')")


def summary_line(summary: dict[str, Any]) -> str:
    """One line for the run log and the labeling tab."""
    parts = [f"{summary.get('decided_by_model', 0)} image(s) decided by the model"]
    if summary.get("accuracy") is not None:
        parts.append(f"held-out accuracy {summary['accuracy']} on {summary.get('held_out')} image(s)")
    if summary.get("labels"):
        parts.append("labels " + ", ".join(f"{k} {v}" for k, v in summary["labels"].items()))
    if summary.get("waiting_because"):
        parts.append(summary["waiting_because"].removeprefix("waiting for a label: "))
    return "; ".join(parts)
