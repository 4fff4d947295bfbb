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


def test_fnc1_score_by_hand():
    from stance.eval.metrics import fnc1_score

    gold = ["agree", "disagree", "discuss", "unrelated", "unrelated", "agree"]
    pred = ["agree", "discuss", "unrelated", "unrelated", "agree", "disagree"]
    # agree/agree: 1.0; disagree/discuss: 0.25 (both related); discuss/unrelated: 0;
    # unrelated/unrelated: 0.25; unrelated/agree: 0; agree/disagree: 0.25. Max: 4 x 1.0 + 2 x 0.25 = 4.5
    result = fnc1_score(gold, pred)
    assert result["score"] == pytest.approx(1.75) and result["max_score"] == pytest.approx(4.5)
    assert result["relative"] == pytest.approx(1.75 / 4.5)


def test_abstain_and_precision_coverage():
    from stance.eval.metrics import abstain_predictions, precision_coverage_curve

    probabilities = np.array([[0.7, 0.1, 0.2], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.45, 0.1, 0.45]])
    assert abstain_predictions(probabilities, 0.6).tolist() == [0, 2, 2, 2]
    assert abstain_predictions(probabilities, 0.0).tolist() == [0, 1, 0, 0]
    curve = precision_coverage_curve(probabilities, [0, 2, 2, 0], thresholds=[0.0, 0.6])
    # t=0: all 4 decided, right: rows 0 and 3 -> precision 0.5; t=0.6: only row 0 decided, right
    assert curve[0]["coverage"] == 1.0 and curve[0]["precision"] == pytest.approx(0.5)
    assert curve[1]["coverage"] == 0.25 and curve[1]["precision"] == 1.0


def test_mcnemar_and_bootstrap():
    from stance.eval.metrics import bootstrap_macro_f1_difference, mcnemar_test

    y = [0, 1, 2, 0, 1, 2, 0, 1]
    a = [0, 1, 2, 1, 0, 0, 0, 1]  # right on rows 0,1,2,6,7
    b = [0, 1, 2, 0, 1, 2, 1, 2]  # right on rows 0,1,2,3,4,5
    result = mcnemar_test(y, a, b)
    assert result["only_first_right"] == 2 and result["only_second_right"] == 3
    assert result["p_value"] == pytest.approx(1.0)  # binomial(2 of 5, 0.5), two-sided
    same = bootstrap_macro_f1_difference(y, a, a, n_resamples=50)
    assert same["mean"] == 0.0 and same["ci95"] == [0.0, 0.0]


def test_temperature_scaling_recovers_a_known_temperature():
    from stance.eval.calibration import fit_temperature, softmax

    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(4000, 3)) * 2.0
    labels = np.array([rng.choice(3, p=p) for p in softmax(true_logits)])
    # The model is over-confident by a factor 3: its logits are 3x the true ones.
    assert fit_temperature(true_logits * 3.0, labels) == pytest.approx(3.0, rel=0.1)
    before = expected_calibration_error(softmax(true_logits * 3.0), labels)
    after = expected_calibration_error(softmax(true_logits * 3.0, 3.0), labels)
    assert after < before


def test_reliability_bins_count_every_row():
    from stance.eval.metrics import reliability_bins

    probabilities = np.array([[0.9, 0.05, 0.05], [0.4, 0.3, 0.3], [0.2, 0.7, 0.1]])
    bins = reliability_bins(probabilities, [0, 1, 1], n_bins=10)
    assert sum(b["count"] for b in bins) == 3
    assert [b for b in bins if b["count"]][0]["accuracy"] == 0.0  # conf 0.4 bin: predicted 0, truth 1


def test_model_and_eval_abstain_rules_agree():
    from stance.eval.metrics import abstain_predictions
    from stance.model.classifier import abstain_labels
    from stance.model.labels import LABELS

    rng = np.random.default_rng(1)
    probabilities = rng.dirichlet([1, 1, 1], size=500)
    for threshold in (0.0, 0.3, 0.5, 0.8):
        assert abstain_labels(probabilities, threshold) == [
            LABELS[i] for i in abstain_predictions(probabilities, threshold)
        ]


def test_choose_temperature_keeps_t_only_when_held_out_nll_improves():
    from stance.eval.calibration import TEMPERATURE_BOUNDS, choose_temperature

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=600)
    informative = np.eye(3)[labels] * 2.0 + rng.normal(0, 1.0, (600, 3))
    sharp = choose_temperature(informative * 4.0, labels)  # over-confident: T > 1 helps on held-out rows
    assert sharp["kept"] and sharp["temperature"] > 1.5
    assert sharp["heldout_nll_after"] < sharp["heldout_nll_before"]
    noise = rng.normal(0, 3.0, (600, 3))  # logits unrelated to labels: T runs to its bound, and says so
    verdict = choose_temperature(noise, labels)
    assert verdict["temperature"] == pytest.approx(TEMPERATURE_BOUNDS[1], rel=1e-3)
    assert "at its bound" in verdict["reason"]
    tiny = choose_temperature(noise[:10], labels[:10])
    assert tiny["kept"] is False and tiny["temperature"] == 1.0 and "only 10 dev rows" in tiny["reason"]


def test_precision_coverage_labels_never_overprint(tmp_path):
    from stance.eval.plots import plot_precision_coverage, spaced_labels

    # a curve whose points bunch together at high thresholds (the case that overprinted)
    curve = [{"threshold": t, "coverage": max(0.0, 0.9 - t) ** 3, "precision": 0.6 + 0.4 * t, "n_decided": 10}
             for t in np.linspace(0.34, 0.99, 40)]  # fmt: skip
    chosen = spaced_labels(curve, x_span=max(p["coverage"] for p in curve) * 1.05)
    assert 2 <= len(chosen) <= 8
    span = max(p["coverage"] for p in curve) * 1.05
    for i, a in enumerate(chosen):
        for b in chosen[i + 1 :]:
            dx = abs(curve[a]["coverage"] - curve[b]["coverage"]) / span
            dy = abs(curve[a]["precision"] - curve[b]["precision"])
            assert dx >= 0.09 or dy >= 0.09
    assert plot_precision_coverage(curve, tmp_path / "pc.png").stat().st_size > 0
