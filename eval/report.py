"""Write evaluation results: ``metrics.json`` (machine) and ``report.md`` (people)."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_metrics_json(metrics: dict, path: str | os.PathLike[str]) -> Path:
    """Write ``metrics`` as indented JSON with sorted keys."""
    path = Path(path)
    path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def metrics_table(metrics: dict) -> str:
    """Markdown table of per-class precision/recall/F1/support."""
    lines = ["| label | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
    for label, values in metrics["per_class"].items():
        lines.append(
            f"| {label} | {values['precision']:.3f} | {values['recall']:.3f} | {values['f1']:.3f} | {values['support']:,} |"
        )
    return "\n".join(lines)


def confusion_table(metrics: dict) -> str:
    """Markdown confusion matrix (rows true, columns predicted)."""
    labels = metrics["labels"]
    lines = ["| true \\ predicted | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    for label, row in zip(labels, metrics["confusion_matrix"], strict=True):
        lines.append(f"| {label} | " + " | ".join(f"{count:,}" for count in row) + " |")
    return "\n".join(lines)


def render_report(results: dict) -> str:
    """Markdown report of one evaluation (see ``eval.evaluate.evaluate_file`` for the dict)."""
    overall = results["overall"]
    parts = [
        f"# Evaluation of `{results['model']}`",
        "",
        f"Data: `{results['data']}` ({overall['n']:,} pairs); long texts: {results['long_text']}; "
        f"truncated pairs: {results['truncated_pairs']:,} ({results['truncated_share']:.1%}).",
        "",
        f"**macro-F1 {overall['macro_f1']:.4f}**, accuracy {overall['accuracy']:.4f}",
        "",
        metrics_table(overall),
        "",
        "Confusion matrix (rows: true label, columns: predicted):",
        "",
        confusion_table(overall),
    ]
    if results.get("fnc1"):
        fnc = results["fnc1"]
        parts += ["", f"FNC-1 weighted score: {fnc['score']:.1f} of {fnc['max_score']:.1f} ({fnc['relative']:.2%})"]
    if results.get("by_source") and len(results["by_source"]) > 1:
        parts += ["", "## By source", "", "| source | n | macro-F1 | accuracy |", "|---|---:|---:|---:|"]
        for source, values in results["by_source"].items():
            parts.append(f"| {source} | {values['n']:,} | {values['macro_f1']:.4f} | {values['accuracy']:.4f} |")
    parts += ["", "Reproduce: `" + results["command"] + "`", ""]
    return "\n".join(parts)


def write_report(results: dict, path: str | os.PathLike[str]) -> Path:
    """Write ``render_report(results)`` to ``path``."""
    path = Path(path)
    path.write_text(render_report(results), encoding="utf-8")
    return path
