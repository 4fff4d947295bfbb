"""Write evaluation results: ``metrics.json`` (machine) and ``report.md`` (people)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path


def strict_json_value(value):
    """``value`` with every NaN or infinity replaced by None, recursively: JSON has neither, and
    most parsers reject Python's bare ``NaN`` (an undefined metric, e.g. F1 of an absent class)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json_value(v) for v in value]
    return value


def write_metrics_json(metrics: dict, path: str | os.PathLike[str]) -> Path:
    """Write ``metrics`` as indented, strictly valid JSON with sorted keys (NaN -> null)."""
    path = Path(path)
    text = json.dumps(strict_json_value(metrics), indent=2, sort_keys=True, allow_nan=False, default=_plain)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _plain(value):
    """numpy scalars and arrays as Python values (json cannot encode them itself)."""
    if hasattr(value, "tolist"):
        return strict_json_value(value.tolist())
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


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
        f"Data: `{results['data']}` ({overall['n']:,} pairs); backend: {results.get('backend', 'torch')}; "
        f"long texts: {results['long_text']}; "
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
    calibration = results["calibration"]
    parts += [
        "",
        f"Calibration: temperature {calibration['temperature']:.3f}; ECE {calibration['ece']:.4f} "
        f"(uncalibrated {calibration['ece_uncalibrated']:.4f}); the temperature that would fit this data: "
        f"{calibration['temperature_fitted_here']:.3f}.",
    ]
    for reading, fnc in (results.get("fnc1") or {}).items():
        parts.append(
            f"FNC-1 weighted score ({reading.replace('_', ' ')}): {fnc['score']:.2f} of {fnc['max_score']:.2f} ({fnc['relative']:.2%})"
        )
    for title, key in (("By source", "by_source"), ("By pair length (tokens, untruncated)", "by_length")):
        breakdown = results.get(key) or {}
        if len(breakdown) > 1 or key == "by_length":
            parts += [
                "",
                f"## {title}",
                "",
                "| group | n | macro-F1 | accuracy |" + (" truncated |" if key == "by_length" else ""),
                "|---|---:|---:|---:|" + ("---:|" if key == "by_length" else ""),
            ]
            for name, values in breakdown.items():
                extra = f" {values['truncated_share']:.1%} |" if key == "by_length" else ""
                parts.append(
                    f"| {name} | {values['n']:,} | {values['macro_f1']:.4f} | {values['accuracy']:.4f} |{extra}"
                )
    parts += ["", "Reproduce: `" + results["command"] + "`", ""]
    return "\n".join(parts)


def write_report(results: dict, path: str | os.PathLike[str]) -> Path:
    """Write ``render_report(results)`` to ``path``."""
    path = Path(path)
    path.write_text(render_report(results), encoding="utf-8")
    return path


def render_comparison(comparison: dict) -> str:
    """Markdown side-by-side table of several models on one data set."""
    lines = [
        f"# Comparison on `{comparison['data']}`",
        "",
        "| model | macro-F1 | accuracy | F1 support | F1 contradict | F1 neutral | ECE | truncated | vs first: McNemar p | macro-F1 diff (95% CI) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for m in comparison["models"]:
        versus = m.get("vs_first")
        tests = (
            f"{versus['mcnemar']['p_value']:.3g} | {versus['macro_f1_difference']['mean']:+.4f} "
            f"({versus['macro_f1_difference']['ci95'][0]:+.4f}, {versus['macro_f1_difference']['ci95'][1]:+.4f})"
            if versus
            else "(reference) | "
        )
        lines.append(
            f"| {m['model']} | {m['macro_f1']:.4f} | {m['accuracy']:.4f} | {m['f1']['support']:.3f} | {m['f1']['contradict']:.3f} | "
            f"{m['f1']['neutral']:.3f} | {m['ece']:.4f} | {m['truncated_share']:.1%} | {tests} |"
        )
    return "\n".join(lines) + "\n"
