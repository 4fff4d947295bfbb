"""Run a model on a labelled file and write metrics.json, report.md and plots."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from stance.eval.metrics import classification_metrics
from stance.eval.plots import plot_confusion_matrix
from stance.eval.report import write_metrics_json, write_report
from stance.model.classifier import StanceClassifier
from stance.training.config import DatasetConfig
from stance.training.data import load_dataset_file


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
) -> dict:
    """Predict every row of a labelled file and compute metrics (overall and per source).

    Returns a dict with ``overall`` metrics, ``by_source`` metrics, truncation counts and
    the raw ``y_true``/``y_pred``/``probabilities`` arrays (not JSON; dropped on write).
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
    y_pred = result.probabilities.argmax(axis=1)
    sources = np.asarray(data.sources)
    by_source = {
        source: classification_metrics(y_true[sources == source], y_pred[sources == source])
        for source in sorted(set(data.sources))
    }
    return {
        "model": model_name,
        "data": spec.path,
        "long_text": long_text or classifier.metadata.long_text,
        "overall": classification_metrics(y_true, y_pred),
        "by_source": by_source,
        "truncated_pairs": int(result.truncated.sum()),
        "truncated_share": float(result.truncated.mean()) if len(result) else 0.0,
        "command": command,
        "_arrays": {
            "y_true": y_true,
            "y_pred": y_pred,
            "probabilities": result.probabilities,
            "source_labels": data.source_labels,
        },
    }


def write_evaluation(results: dict, output_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write metrics.json, report.md and confusion_matrix.png into ``output_dir``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    public = {k: v for k, v in results.items() if not k.startswith("_")}
    overall = results["overall"]
    return {
        "metrics": write_metrics_json(public, output_dir / "metrics.json"),
        "report": write_report(public, output_dir / "report.md"),
        "confusion_matrix": plot_confusion_matrix(
            overall["confusion_matrix"],
            overall["labels"],
            output_dir / "confusion_matrix.png",
            title=f"{results['model']} on {Path(results['data']).name}",
        ),
    }
