"""Metrics against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from stance.eval.metrics import classification_metrics, expected_calibration_error


def test_classification_metrics_by_hand():
    # true:  S S S C C N N N N N      pred: S S C C N N N N S N
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2, 2]
    y_pred = [0, 0, 1, 1, 2, 2, 2, 2, 0, 2]
    m = classification_metrics(y_true, y_pred)
    assert m["accuracy"] == pytest.approx(7 / 10)
    # support: P = 2/3, R = 2/3, F1 = 2/3; contradict: P = 1/2, R = 1/2; neutral: P = 4/5, R = 4/5
    assert m["per_class"]["support"]["f1"] == pytest.approx(2 / 3)
    assert m["per_class"]["contradict"]["precision"] == pytest.approx(1 / 2)
    assert m["per_class"]["neutral"]["recall"] == pytest.approx(4 / 5)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1 / 2 + 4 / 5) / 3)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [1, 0, 4]]
    assert m["per_class"]["neutral"]["support"] == 5


def test_two_class_data_is_not_penalised_for_absent_neutral():
    m = classification_metrics([0, 0, 1, 1], [0, 0, 1, 0])
    # support: P 2/3 R 1 F1 0.8; contradict: P 1 R 1/2 F1 2/3; neutral absent from both -> left out
    assert m["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    predicted_neutral = classification_metrics([0, 1], [2, 1])
    assert predicted_neutral["macro_f1"] == pytest.approx((0 + 1 + 0) / 3)


def test_ece_by_hand():
    probabilities = np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1]])
    y_true = [0, 1, 0, 2]
    # bins of width 0.1: conf 0.9 (2 rows, acc 0.5) -> |0.5-0.9| * 2/4 = 0.2
    # conf 0.6 (1 row, acc 1) -> 0.4 * 1/4 = 0.1; conf 0.7 (1 row, acc 0) -> 0.7 * 1/4 = 0.175
    assert expected_calibration_error(probabilities, y_true, n_bins=10) == pytest.approx(0.475)
    perfect = np.eye(3)
    assert expected_calibration_error(perfect, [0, 1, 2]) == pytest.approx(0.0)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="y_true has 2 rows but y_pred has 1"):
        classification_metrics([0, 1], [0])
