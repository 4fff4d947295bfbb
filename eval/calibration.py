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


TEMPERATURE_BOUNDS = (0.2, 5.0)


def fit_temperature(
    logits: np.ndarray, y_true: Sequence[int], bounds: tuple[float, float] = TEMPERATURE_BOUNDS
) -> float:
    """The temperature within ``bounds`` that minimises NLL (bounded scalar search on log T).

    The bounds keep a degenerate fit (a near-constant model pushes T to infinity, a tiny
    dev set can push it towards 0) from producing absurd probabilities.
    """
    if len(y_true) == 0:
        raise ValueError("cannot fit a temperature on an empty data set")
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(logits, y_true, float(np.exp(log_t))),
        bounds=(np.log(bounds[0]), np.log(bounds[1])),
        method="bounded",
    )
    return float(np.exp(result.x))


def choose_temperature(logits: np.ndarray, y_true: Sequence[int], seed: int = 13) -> dict:
    """Fit T, and keep it only if it lowers the NLL of dev rows it was not fitted on.

    The NLL of the rows T is fitted on can only go down, so that says nothing; here T is
    fitted on each half of a seeded split and judged on the other half (2-fold). If the
    held-out NLL does not improve, T = 1 (uncalibrated) is kept and the reason returned.
    Returns ``temperature``, ``kept`` (bool), ``reason`` and the held-out NLL before/after.
    """
    logits = np.asarray(logits, dtype=np.float64)
    y_true = np.asarray(y_true)
    if len(y_true) < 20:
        return {"temperature": 1.0, "kept": False, "reason": f"only {len(y_true)} dev rows; need at least 20",
                "heldout_nll_before": None, "heldout_nll_after": None}  # fmt: skip
    order = np.random.default_rng(seed).permutation(len(y_true))
    halves = (order[: len(order) // 2], order[len(order) // 2 :])
    before, after = [], []
    for fit_rows, test_rows in (halves, halves[::-1]):
        temperature = fit_temperature(logits[fit_rows], y_true[fit_rows])
        before.append(negative_log_likelihood(logits[test_rows], y_true[test_rows], 1.0))
        after.append(negative_log_likelihood(logits[test_rows], y_true[test_rows], temperature))
    nll_before, nll_after = float(np.mean(before)), float(np.mean(after))
    fitted = fit_temperature(logits, y_true)
    at_bound = min(abs(fitted - b) / b for b in TEMPERATURE_BOUNDS) < 1e-3
    if nll_after >= nll_before:
        return {"temperature": 1.0, "kept": False, "heldout_nll_before": nll_before, "heldout_nll_after": nll_after,
                "reason": f"T={fitted:.3f} did not lower held-out dev NLL ({nll_before:.4f} -> {nll_after:.4f})"}  # fmt: skip
    reason = f"held-out dev NLL {nll_before:.4f} -> {nll_after:.4f}"
    if at_bound:
        reason += f"; T is at its bound {TEMPERATURE_BOUNDS}: the model's confidence is far off, check the model"
    return {"temperature": fitted, "kept": True, "reason": reason, "heldout_nll_before": nll_before,
            "heldout_nll_after": nll_after}  # fmt: skip
