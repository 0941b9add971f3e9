"""SmartHumanTag: a person tags images in the HumanTag tab; once a tag has enough images with and without it,
a classifier on the CLIP embeddings (one sigmoid per tag) tags the images nobody tagged.

Per tag, the threshold is the lowest score that reaches `target_precision` on the held-out split (so recall
is as high as that precision allows); a tag that reaches it nowhere is never predicted. Predicted tags go
into `target_prop` like a person's (upstream tags outside the tag set kept in front) and are listed in
`<target_prop>_predicted`, so they stay distinguishable; they never enter the label journal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from beprepared_dagster.nodes.base import Image, Outcome
from beprepared_dagster.nodes.human import tag_rows
from beprepared_dagster.nodes.smart import SmartNode, SmartResult


class SmartHumanTag(SmartNode):
    """A person toggles tags ({names}); per-tag classifiers on CLIP embeddings tag the images nobody tagged.

    Args:
        tags: the tag set (a list, or rows of tags as in HumanTag).
        domain, version: the labels' domain and version (shared with HumanTag stages of that domain).
        target_prop: where the tags go (`<target_prop>_predicted` lists the predicted ones).
        min_per_tag: images with the tag, and images without it, a tag needs before it is learned.
        target_precision: the held-out precision each tag's threshold must reach.
        learning_rate, batch_size, epochs, patience, dropout, seed: training.
        embedding: the property holding ClipEmbed's embedding reference.
    """

    kind = "tag"
    writes: ClassVar[tuple[str, ...]] = ("{target_prop}", "{target_prop}_predicted")
    description: ClassVar[str] = "A person tags images ({names}); classifiers learned from them tag the rest."

    def __init__(
        self,
        tags: list[str] | list[list[str]] | None = None,
        domain: str = "default",
        version: int = 1,
        target_prop: str = "tags",
        min_per_tag: int = 100,
        target_precision: float = 0.9,
        learning_rate: float = 1e-3,
        batch_size: int = 128,
        epochs: int = 500,
        patience: int = 20,
        dropout: float = 0.5,
        embedding: str = "clip",
        seed: int = 0,
    ) -> None:
        self.rows = tag_rows(tags)
        self.all_tags = [t for row in self.rows for t in row]
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError(f"version must be an integer, not {version!r}")
        if not isinstance(target_prop, str) or not target_prop or target_prop.startswith("_"):
            raise ValueError(
                f"target_prop must be a property name not starting with '_', got {target_prop!r}"
            )
        if not 0 < target_precision <= 1 or not 0 <= dropout < 1:
            raise ValueError(
                f"target_precision must be in (0, 1] and dropout in [0, 1); got {target_precision!r}"
            )
        self._setup_smart(
            embedding,
            {"min_per_tag": 1, "learning_rate": 1e-12, "batch_size": 1, "epochs": 1, "patience": 1},
        )

    def is_labeled(self, label: Mapping[str, Any] | None) -> bool:
        return label is not None and label.get("version") == self.params["version"]

    def outcome(self, image: Image, label: Mapping[str, Any] | None) -> Outcome | None:
        if not self.is_labeled(label):
            return None
        if label.get("rejected"):  # type: ignore[union-attr]
            return Outcome.reject(f"rejected while tagging (domain {self.params['domain']})")
        chosen = [t for t in self.all_tags if t in set(label.get("tags") or [])]  # type: ignore[union-attr]
        return Outcome.keep(**{self.params["target_prop"]: self._merge(image, chosen)})

    def _merge(self, image: Image, chosen: list[str]) -> list[str]:
        existing = image.get(self.params["target_prop"]) or []
        existing = [existing] if isinstance(existing, str) else list(existing)
        return list(dict.fromkeys([t for t in existing if t not in self.all_tags] + chosen))

    def decide(
        self, images: list[Image], labels: list[Any], vectors: Any, models: Any, log: Any
    ) -> SmartResult:
        from beprepared_dagster.learning.classifier import Classifier

        outcomes: list[Any] = [self.outcome(i, lab) for i, lab in zip(images, labels, strict=True)]
        tagged = [k for k, lab in enumerate(labels) if lab is not None and not lab.get("rejected")]
        truth = [[t in set(labels[k].get("tags") or []) for t in self.all_tags] for k in tagged]
        positives = {t: sum(row[j] for row in truth) for j, t in enumerate(self.all_tags)}
        learnable = [
            t
            for t in self.all_tags
            if min(positives[t], len(tagged) - positives[t]) >= self.params["min_per_tag"]
        ]
        summary: dict[str, Any] = {
            "images": len(images),
            "labels": {"tagged": len(tagged)},
            "decided_by_model": 0,
        }
        summary["labels"].update({f"with {t}": n for t, n in positives.items()})
        todo = [k for k, o in enumerate(outcomes) if o is None]
        if not learnable:
            why = self._waiting(positives, len(tagged))
            summary["waiting_because"] = why
            return SmartResult([o if o is not None else why for o in outcomes], summary)
        columns = [self.all_tags.index(t) for t in learnable]
        targets = [[int(row[j]) for j in columns] for row in truth]
        key = self.model_key([images[k] for k in tagged], [[learnable, row] for row in targets])
        stored = models.get(key)
        if stored is None:
            model, metrics = self._train(vectors[tagged], targets, learnable, log)
            models.put(key, type(self).__name__, self.params["domain"], model.to_bytes(), metrics)
        else:
            model, metrics = Classifier.from_bytes(stored[0]), stored[1]
        summary.update(metrics)
        thresholds = {t: m["threshold"] for t, m in metrics["tags"].items() if m["threshold"] is not None}
        if todo:
            for k, scores in zip(todo, model.predict_proba(vectors[todo]).tolist(), strict=True):
                chosen = [
                    t
                    for t, s in zip(learnable, scores, strict=True)
                    if t in thresholds and s >= thresholds[t]
                ]
                outcomes[k] = Outcome.keep(
                    **{
                        self.params["target_prop"]: self._merge(images[k], chosen),
                        f"{self.params['target_prop']}_predicted": chosen,
                    }
                )
        summary["decided_by_model"] = len(todo)
        return SmartResult(outcomes, summary, key)

    def _waiting(self, positives: dict[str, int], tagged: int) -> str:
        need = self.params["min_per_tag"]
        tag = min(self.all_tags, key=lambda t: need - min(positives[t], tagged - positives[t]))
        more_with, more_without = max(0, need - positives[tag]), max(0, need - (tagged - positives[tag]))
        return (
            f"waiting for a label: a tag is learned once min_per_tag={need} images have it and {need} lack it "
            f"(closest, {tag!r}: {more_with} more with it, {more_without} more without)"
        )

    def _train(self, x: Any, targets: list[list[int]], learnable: list[str], log: Any) -> tuple[Any, dict]:
        import numpy as np

        from beprepared_dagster.learning.classifier import train
        from beprepared_dagster.learning.evaluate import tag_thresholds

        y = np.array(targets)
        model = train(x, y, learnable, self.settings(), multilabel=True)
        test = np.array(model.info["test"], dtype=int)
        tags = tag_thresholds(model, x[test], y[test], self.params["target_precision"])
        metrics = {
            "tags": tags,
            "held_out": len(test),
            "training": {k: v for k, v in model.info.items() if k != "test"},
        }
        log.info(
            f"SmartHumanTag[{self.params['domain']}]: trained {len(learnable)} tag(s) on {len(y)} tagged images; "
            + ", ".join(f"{t}: precision {m['precision']} recall {m['recall']}" for t, m in tags.items())
        )
        return model, metrics
