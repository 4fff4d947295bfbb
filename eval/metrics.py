"""Classification metrics as pure functions of labels and probabilities.

Imports only numpy and scikit-learn. The primary metric is ``macro_f1``. Labels are
canonical ids (index into ``LABELS``), so every confusion matrix has the same axes.

Example:
    >>> m = classification_metrics([0, 1, 2, 2], [0, 1, 2, 0])
    >>> round(m["accuracy"], 2), round(m["macro_f1"], 3)
    (0.75, 0.778)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

LABELS = ("support", "contradict", "neutral")  # kept equal to stance.model.labels.LABELS (tested)


def classification_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    labels: Sequence[str] = LABELS,
) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    Classes absent from both ``y_true`` and ``y_pred`` are left out of the macro average
    (a 2-class data set is not penalised for a class it does not have), but stay in the
    per-class table with support 0.

    Returns:
        {"accuracy", "macro_f1", "per_class": {label: {precision, recall, f1, support}},
         "confusion_matrix": rows = true label, columns = predicted, in ``labels`` order,
         "labels", "n"}
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.shape[0]} rows but y_pred has {y_pred.shape[0]}")
    ids = list(range(len(labels)))
    present = sorted(set(y_true.tolist()) | set(y_pred.tolist())) or ids
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=ids, zero_division=0)
    return {
        "n": int(len(y_true)),
        "labels": list(labels),
        "accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0))
        if len(y_true)
        else 0.0,
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
    }


def expected_calibration_error(
    probabilities: np.ndarray, y_true: Sequence[int] | np.ndarray, n_bins: int = 15
) -> float:
    """ECE of the top-label confidence with equal-width bins (Guo et al., 2017).

    ECE = sum over bins of (rows in bin / N) * |accuracy(bin) - mean confidence(bin)|.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    if len(y_true) == 0:
        return 0.0
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bin i holds confidence in (edges[i], edges[i+1]]; confidence 0 goes to the first bin.
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


FNC1_RELATED = ("agree", "disagree", "discuss")


def fnc1_score(gold: Sequence[str], predicted: Sequence[str]) -> dict:
    """FNC-1's official weighted score on its four labels (agree, disagree, discuss, unrelated).

    Definition (Fake News Challenge, stage 1 scorer): for each pair, +0.25 when the
    related/unrelated decision is right (both unrelated, or both one of agree/disagree/
    discuss), and a further +0.75 when the gold label is related and the predicted label
    equals it. The maximum is 0.25 per unrelated pair + 1.0 per related pair.

    Returns:
        {"score", "max_score", "relative": score / max_score}
    """
    if len(gold) != len(predicted):
        raise ValueError(f"gold has {len(gold)} rows but predicted has {len(predicted)}")
    score = 0.0
    max_score = 0.0
    for truth, guess in zip(gold, predicted, strict=True):
        truth_related, guess_related = truth in FNC1_RELATED, guess in FNC1_RELATED
        max_score += 1.0 if truth_related else 0.25
        if truth_related == guess_related:
            score += 0.25
            if truth_related and truth == guess:
                score += 0.75
    return {"score": score, "max_score": max_score, "relative": score / max_score if max_score else 0.0}


def abstain_predictions(probabilities: np.ndarray, threshold: float, neutral: int = 2) -> np.ndarray:
    """Label ids that say ``neutral`` unless the top non-neutral probability reaches ``threshold``."""
    probabilities = np.asarray(probabilities)
    others = [i for i in range(probabilities.shape[1]) if i != neutral]
    best = np.asarray(others)[probabilities[:, others].argmax(axis=1)]
    confident = probabilities[:, others].max(axis=1) >= threshold
    return np.where(confident, best, neutral)


def precision_coverage_curve(
    probabilities: np.ndarray,
    y_true: Sequence[int] | np.ndarray,
    thresholds: Sequence[float] | None = None,
    neutral: int = 2,
) -> list[dict]:
    """For each threshold: the share of pairs given a non-neutral label (coverage), and how
    many of those are right (precision). Pick a threshold for the precision you need."""
    y_true = np.asarray(y_true)
    thresholds = np.linspace(0.0, 0.99, 100) if thresholds is None else thresholds
    curve = []
    for threshold in thresholds:
        predicted = abstain_predictions(probabilities, float(threshold), neutral)
        decided = predicted != neutral
        curve.append(
            {
                "threshold": float(threshold),
                "coverage": float(decided.mean()) if len(y_true) else 0.0,
                "precision": float((predicted[decided] == y_true[decided]).mean()) if decided.any() else float("nan"),
                "n_decided": int(decided.sum()),
            }
        )
    return curve


def mcnemar_test(y_true: Sequence[int], pred_a: Sequence[int], pred_b: Sequence[int]) -> dict:
    """Exact McNemar test on the pairs where exactly one of two models is right."""
    from scipy.stats import binomtest

    y_true, pred_a, pred_b = map(np.asarray, (y_true, pred_a, pred_b))
    only_a = int(((pred_a == y_true) & (pred_b != y_true)).sum())
    only_b = int(((pred_b == y_true) & (pred_a != y_true)).sum())
    p_value = float(binomtest(only_a, only_a + only_b, 0.5).pvalue) if only_a + only_b else 1.0
    return {"only_first_right": only_a, "only_second_right": only_b, "p_value": p_value}


def bootstrap_macro_f1_difference(
    y_true: Sequence[int], pred_a: Sequence[int], pred_b: Sequence[int], n_resamples: int = 1000, seed: int = 13
) -> dict:
    """Paired bootstrap of macro-F1(b) - macro-F1(a): the mean and a 95% interval."""
    y_true, pred_a, pred_b = map(np.asarray, (y_true, pred_a, pred_b))
    rng = np.random.default_rng(seed)
    labels = sorted(set(y_true.tolist()))
    differences = np.empty(n_resamples)
    for i in range(n_resamples):
        rows = rng.integers(0, len(y_true), len(y_true))
        f1_a = f1_score(y_true[rows], pred_a[rows], labels=labels, average="macro", zero_division=0)
        f1_b = f1_score(y_true[rows], pred_b[rows], labels=labels, average="macro", zero_division=0)
        differences[i] = f1_b - f1_a
    low, high = np.percentile(differences, [2.5, 97.5])
    return {"mean": float(differences.mean()), "ci95": [float(low), float(high)], "n_resamples": n_resamples}


def reliability_bins(probabilities: np.ndarray, y_true: Sequence[int] | np.ndarray, n_bins: int = 15) -> list[dict]:
    """Per equal-width confidence bin: mean confidence, accuracy and count (for the diagram)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    y_true = np.asarray(y_true)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    return [
        {
            "low": float(edges[b]),
            "high": float(edges[b + 1]),
            "count": int((bins == b).sum()),
            "confidence": float(confidence[bins == b].mean()) if (bins == b).any() else float("nan"),
            "accuracy": float(correct[bins == b].mean()) if (bins == b).any() else float("nan"),
        }
        for b in range(n_bins)
    ]
