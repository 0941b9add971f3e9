"""Judging a classifier on its held-out split: accuracy and a confusion matrix with an "uncertain" column
(the filter), and per-tag thresholds for a target precision (the tagger)."""

from __future__ import annotations

from typing import Any

from beprepared_dagster.learning.classifier import Classifier

UNCERTAIN = "uncertain"


def confident(probabilities: Any, min_confidence: float) -> tuple[Any, Any]:
    """(predicted class index, whether the top probability reaches `min_confidence`) per row."""
    return probabilities.argmax(axis=1), probabilities.max(axis=1) >= min_confidence


def evaluate_classes(model: Classifier, x: Any, y: Any, min_confidence: float) -> dict[str, Any]:
    """Accuracy of the top class over the held-out rows, accuracy over the confident ones, and the confusion
    matrix `{true: {predicted or "uncertain": count}}`."""
    import numpy as np

    y = np.asarray(y)
    if len(y) == 0:
        return {"held_out": 0, "accuracy": None, "confident_accuracy": None, "confusion": {}}
    predicted, sure = confident(model.predict_proba(x), min_confidence)
    confusion = {c: {p: 0 for p in [*model.classes, UNCERTAIN]} for c in model.classes}
    for truth, guess, ok in zip(y.tolist(), predicted.tolist(), sure.tolist(), strict=True):
        confusion[model.classes[truth]][model.classes[guess] if ok else UNCERTAIN] += 1
    return {
        "held_out": len(y),
        "accuracy": round(float((predicted == y).mean()), 4),
        "confident_accuracy": round(float((predicted[sure] == y[sure]).mean()), 4) if sure.any() else None,
        "uncertain_share": round(float(1 - sure.mean()), 4),
        "confusion": confusion,
    }


def confusion_markdown(confusion: dict[str, dict[str, int]]) -> str:
    """The matrix as a markdown table (rows: the person's label; columns: the model's call)."""
    if not confusion:
        return "_no held-out labels_"
    columns = list(next(iter(confusion.values())))
    lines = ["| label \\ model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [
        f"| {truth} | " + " | ".join(str(row[c]) for c in columns) + " |" for truth, row in confusion.items()
    ]
    return "\n".join(lines)


def tag_thresholds(model: Classifier, x: Any, y: Any, target_precision: float) -> dict[str, dict[str, Any]]:
    """Per tag, the lowest threshold whose precision on the held-out rows reaches `target_precision` (so
    recall is highest; placed midway between that held-out score and the next lower one), with that
    precision and recall; threshold None when no threshold reaches it (the tag is then never predicted)."""
    import numpy as np

    probabilities = model.predict_proba(x) if len(y) else np.zeros((0, len(model.classes)))
    y = np.asarray(y).reshape(len(probabilities), len(model.classes))
    result = {}
    for k, tag in enumerate(model.classes):
        truth, scores = y[:, k].astype(bool), probabilities[:, k]
        chosen: dict[str, Any] = {
            "threshold": None,
            "precision": None,
            "recall": None,
            "support": int(truth.sum()),
        }
        candidates = sorted(set(scores.tolist()))
        for i, threshold in enumerate(candidates):
            called = scores >= threshold
            precision = float((truth & called).sum() / called.sum())
            if precision >= target_precision and truth.any():
                recall = float((truth & called).sum() / truth.sum())
                # Midway into the gap below (same held-out calls): the lowest score itself is a brittle edge.
                middle = (threshold + candidates[i - 1]) / 2 if i else threshold / 2
                chosen.update(threshold=float(middle), precision=round(precision, 4), recall=round(recall, 4))
                break
        result[tag] = chosen
    return result
