"""Run a model on a labelled file; compute every metric; write metrics.json, report.md, plots.

Probabilities before calibration are recovered exactly from the calibrated ones
(softmax(T * log p) undoes the temperature), so ECE before and after costs one pass.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from stance.eval.calibration import fit_temperature, softmax
from stance.eval.metrics import (
    abstain_predictions,
    bootstrap_macro_f1_difference,
    classification_metrics,
    expected_calibration_error,
    fnc1_score,
    mcnemar_test,
    precision_coverage_curve,
    reliability_bins,
)
from stance.eval.plots import plot_compare, plot_confusion_matrix, plot_precision_coverage, plot_reliability
from stance.eval.report import render_comparison, write_metrics_json, write_report
from stance.model.batching import progress_bar, token_counts
from stance.model.classifier import StanceClassifier
from stance.model.labels import LABELS
from stance.training.config import DatasetConfig
from stance.training.data import PairData, load_dataset_file

LENGTH_BUCKETS = ((0, 64), (65, 128), (129, 256), (257, 512), (513, None))
FNC1_LABELS = {"agree", "disagree", "discuss", "unrelated"}


def pair_token_lengths(classifier: StanceClassifier, data: PairData) -> np.ndarray:
    """Untruncated tokens per pair (special tokens included), for length buckets."""
    special = classifier.tokenizer.num_special_tokens_to_add(pair=True)
    premise = token_counts(classifier.tokenizer, data.premises)
    hypothesis = token_counts(classifier.tokenizer, data.hypotheses)
    return np.asarray(premise) + np.asarray(hypothesis) + special


def _bucket_name(low: int, high: int | None) -> str:
    return f"{low}-{high}" if high is not None else f">{low - 1}"


def evaluate_file(
    classifier: StanceClassifier,
    spec: DatasetConfig,
    *,
    batch_size: int = 32,
    long_text: str | None = None,
    symmetric: bool = False,
    progress: bool = False,
    model_name: str = "model",
    command: str = "",
    abstain_threshold: float | None = None,
    n_errors: int = 20,
) -> dict:
    """Predict every row of a labelled file and compute all metrics.

    Returns a JSON-ready dict plus ``_arrays`` (y_true, y_pred, probabilities) and
    ``_errors`` (the most confident mistakes per true class), which writers handle.
    """
    data = load_dataset_file(spec)
    result = classifier.predict(
        data.premises,
        data.hypotheses,
        batch_size=batch_size,
        long_text=long_text,
        symmetric=symmetric,
        progress=progress,
    )
    y_true = np.asarray(data.labels, dtype=np.int64)
    probabilities = result.probabilities
    y_pred = (
        probabilities.argmax(axis=1)
        if abstain_threshold is None
        else abstain_predictions(probabilities, abstain_threshold)
    )
    temperature = float(classifier.metadata.temperature)
    uncalibrated = softmax(temperature * np.log(np.clip(probabilities, 1e-300, None)))
    sources = np.asarray(data.sources)
    lengths = pair_token_lengths(classifier, data)
    by_length = {}
    for low, high in LENGTH_BUCKETS:
        mask = (lengths >= low) & ((lengths <= high) if high is not None else True)
        if mask.any():
            by_length[_bucket_name(low, high)] = classification_metrics(y_true[mask], y_pred[mask]) | {
                "truncated_share": float(result.truncated[mask].mean())
            }
    results = {
        "model": model_name,
        "backend": classifier.backend,  # torch-bf16 and onnx-int8 score on changed weights: say which ran
        "data": spec.path,
        "long_text": long_text or classifier.metadata.long_text,
        "symmetric": symmetric,
        "abstain_threshold": abstain_threshold,
        "overall": classification_metrics(y_true, y_pred),
        "by_source": {
            s: classification_metrics(y_true[sources == s], y_pred[sources == s]) for s in sorted(set(data.sources))
        },
        "by_length": by_length,
        "truncated_pairs": int(result.truncated.sum()),
        "truncated_share": float(result.truncated.mean()) if len(result) else 0.0,
        "calibration": {
            "temperature": temperature,
            "ece_uncalibrated": expected_calibration_error(uncalibrated, y_true),
            "ece": expected_calibration_error(probabilities, y_true),
            "temperature_fitted_here": fit_temperature(np.log(np.clip(uncalibrated, 1e-300, None)), y_true)
            if len(y_true)
            else None,
            "reliability_bins": reliability_bins(probabilities, y_true),
            "reliability_bins_uncalibrated": reliability_bins(uncalibrated, y_true),
        },
        "precision_coverage": precision_coverage_curve(probabilities, y_true, thresholds=np.linspace(0.3, 0.99, 70)),
        "command": command,
        "_arrays": {"y_true": y_true, "y_pred": y_pred, "probabilities": probabilities},
        "_errors": most_confident_mistakes(data, y_true, y_pred, probabilities, n_errors),
    }
    if set(data.source_labels) <= FNC1_LABELS and "unrelated" in set(data.source_labels):
        # A 3-way model cannot tell FNC-1's discuss from unrelated (both are neutral), so the
        # official score is given under both readings of "neutral".
        four_way = {0: "agree", 1: "disagree"}
        results["fnc1"] = {
            f"neutral_as_{reading}": fnc1_score(data.source_labels, [four_way.get(int(p), reading) for p in y_pred])
            for reading in ("unrelated", "discuss")
        }
    return results


def most_confident_mistakes(
    data: PairData, y_true: np.ndarray, y_pred: np.ndarray, probabilities: np.ndarray, n: int
) -> list[dict]:
    """The ``n`` most confident wrong predictions for each true label, most confident first."""
    mistakes = []
    confidence = probabilities[np.arange(len(y_pred)), y_pred] if len(y_pred) else np.array([])
    for label_id, label in enumerate(LABELS):
        rows = np.flatnonzero((y_true == label_id) & (y_pred != label_id))
        for row in rows[np.argsort(-confidence[rows], kind="stable")][:n]:
            mistakes.append(
                {
                    "row": int(row) + 1,
                    "true": label,
                    "predicted": LABELS[int(y_pred[row])],
                    "confidence": round(float(confidence[row]), 4),
                    "source": data.sources[row],
                    "premise": data.premises[row],
                    "hypothesis": data.hypotheses[row],
                }
            )
    return mistakes


def write_evaluation(results: dict, output_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write metrics.json, report.md, errors.jsonl and the PNG plots into ``output_dir``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    public = {k: v for k, v in results.items() if not k.startswith("_")}
    overall = results["overall"]
    errors_path = output_dir / "errors.jsonl"
    errors_path.write_text(
        "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in results["_errors"]), encoding="utf-8"
    )
    title = f"{results['model']} on {Path(results['data']).name}"
    return {
        "metrics": write_metrics_json(public, output_dir / "metrics.json"),
        "report": write_report(public, output_dir / "report.md"),
        "errors": errors_path,
        "confusion_matrix": plot_confusion_matrix(
            overall["confusion_matrix"], overall["labels"], output_dir / "confusion_matrix.png", title=title
        ),
        "reliability": plot_reliability(results["calibration"], output_dir / "reliability.png", title=title),
        "precision_coverage": plot_precision_coverage(
            results["precision_coverage"], output_dir / "precision_coverage.png", title=title
        ),
    }


def compare_models(results: list[dict], output_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Side-by-side table of several models' metrics on one data set, with paired tests
    (McNemar, bootstrap CI of the macro-F1 difference) of each model against the first."""
    first = results[0]["_arrays"]
    comparison = {"data": results[0]["data"], "models": []}
    for result in results:
        arrays = result["_arrays"]
        entry = {
            "model": result["model"],
            "macro_f1": result["overall"]["macro_f1"],
            "accuracy": result["overall"]["accuracy"],
            "f1": {label: values["f1"] for label, values in result["overall"]["per_class"].items()},
            "ece": result["calibration"]["ece"],
            "truncated_share": result["truncated_share"],
        }
        if result is not results[0]:
            entry["vs_first"] = {
                "mcnemar": mcnemar_test(first["y_true"], first["y_pred"], arrays["y_pred"]),
                "macro_f1_difference": bootstrap_macro_f1_difference(
                    first["y_true"], first["y_pred"], arrays["y_pred"]
                ),
            }
        comparison["models"].append(entry)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    json_path = write_metrics_json(comparison, output_dir / "comparison.json")
    md_path = output_dir / "comparison.md"
    md_path.write_text(render_comparison(comparison), encoding="utf-8")
    figure = plot_compare(
        results, output_dir / "comparison.png", title=f"{len(results)} models on {Path(comparison['data']).name}"
    )
    return {"comparison_json": json_path, "comparison_md": md_path, "comparison_png": figure}


def calibrate_classifier(
    classifier: StanceClassifier, specs: list[DatasetConfig], *, batch_size: int = 32, progress: bool = False
) -> dict:
    """Fit the temperature on labelled (dev) files, pooled, and set it on ``classifier.metadata``.

    Returns the fitted temperature and the dev NLL/ECE before and after. Truncate mode is
    used for the fit (window aggregation is not a softmax of one logit row).
    """
    from stance.eval.calibration import choose_temperature, negative_log_likelihood

    data = PairData()
    for spec in specs:
        data.extend(load_dataset_file(spec))
    encoded = classifier.encode(data.premises, data.hypotheses)
    bar = progress_bar(len(data), progress, desc="calibrating")
    logits = classifier.logits(encoded, batch_size=batch_size, progress=bar).astype(np.float64)
    if bar is not None:
        bar.close()
    y_true = np.asarray(data.labels)
    choice = choose_temperature(logits, y_true)
    temperature = choice["temperature"]
    classifier.metadata.temperature = temperature
    return {
        "temperature": temperature,
        "kept": choice["kept"],
        "reason": choice["reason"],
        "data": [spec.path for spec in specs],
        "nll_before": negative_log_likelihood(logits, y_true, 1.0),
        "nll_after": negative_log_likelihood(logits, y_true, temperature),
        "ece_before": expected_calibration_error(softmax(logits), y_true),
        "ece_after": expected_calibration_error(softmax(logits, temperature), y_true),
    }
