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
