"""Temperature scaling (Guo et al., 2017): one scalar T fitted on dev logits by NLL.

Probabilities become softmax(logits / T). T > 1 softens an over-confident model; the
argmax, and so every label, is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize_scalar


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` in float64."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def negative_log_likelihood(logits: np.ndarray, y_true: Sequence[int], temperature: float) -> float:
    """Mean NLL of the true labels under ``softmax(logits / temperature)``."""
    probabilities = softmax(logits, temperature)
    picked = probabilities[np.arange(len(probabilities)), np.asarray(y_true)]
    return float(-np.log(np.clip(picked, 1e-12, None)).mean())


def fit_temperature(logits: np.ndarray, y_true: Sequence[int]) -> float:
    """The temperature in [0.05, 20] that minimises dev NLL (bounded scalar search on log T)."""
    if len(y_true) == 0:
        raise ValueError("cannot fit a temperature on an empty data set")
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(logits, y_true, float(np.exp(log_t))),
        bounds=(np.log(0.05), np.log(20.0)),
        method="bounded",
    )
    return float(np.exp(result.x))
