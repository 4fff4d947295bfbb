"""Plots for reports (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def plot_confusion_matrix(
    matrix: Sequence[Sequence[int]],
    labels: Sequence[str],
    path: str | os.PathLike[str],
    title: str = "Confusion matrix",
) -> Path:
    """Write a confusion matrix PNG with counts and row percentages in every cell.

    Rows are true labels, columns predicted labels; colour is the row percentage so a
    rare class (FNC-1's contradict) reads as clearly as a common one.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    counts = np.asarray(matrix, dtype=np.int64)
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape, dtype=float), where=totals > 0)
    fig, ax = plt.subplots(figsize=(5.2, 4.6), dpi=120)
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            colour = "white" if share[i, j] > 0.6 else "black"
            ax.text(j, i, f"{counts[i, j]:,}\n{share[i, j]:.0%}", ha="center", va="center", color=colour, fontsize=10)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), [f"{label}\n(n={int(totals[i, 0]):,})" for i, label in enumerate(labels)])
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(f"{title}\n(n={int(counts.sum()):,}; colour = share of the true label's row)", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="row share")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_reliability(calibration: dict, path: str | os.PathLike[str], title: str = "Reliability") -> Path:
    """Reliability diagram: accuracy against confidence per bin, before and after temperature
    scaling, with the diagonal of perfect calibration and the rows per bin underneath."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(5.6, 6.0), dpi=120, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    for key, name, colour in (
        ("reliability_bins_uncalibrated", f"T = 1 (ECE {calibration['ece_uncalibrated']:.3f})", "tab:red"),
        ("reliability_bins", f"T = {calibration['temperature']:.2f} (ECE {calibration['ece']:.3f})", "tab:blue"),
    ):
        bins = [b for b in calibration[key] if b["count"]]
        top.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", color=colour, label=name)
    top.set_ylabel("accuracy in bin")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.legend(loc="upper left", fontsize=8)
    top.set_title(f"{title}\nreliability of the top label's probability", fontsize=10)
    bins = calibration["reliability_bins"]
    bottom.bar(
        [(b["low"] + b["high"]) / 2 for b in bins],
        [b["count"] for b in bins],
        width=bins[0]["high"] - bins[0]["low"],
        color="tab:blue",
        alpha=0.6,
    )
    bottom.set_xlabel("confidence (top-label probability)")
    bottom.set_ylabel("pairs")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def spaced_labels(points: list[dict], x_span: float = 1.0, min_gap: float = 0.09, most: int = 8) -> list[int]:
    """Indices of curve points to label: at least ``min_gap`` apart (as a share of the axes,
    in coverage or precision) from every point already labelled, so labels never overprint."""
    chosen: list[int] = []
    for index, point in enumerate(points):
        x, y = point["coverage"] / max(x_span, 1e-9), point["precision"]
        if all(abs(x - points[j]["coverage"] / max(x_span, 1e-9)) >= min_gap or abs(y - points[j]["precision"]) >= min_gap
               for j in chosen):  # fmt: skip
            chosen.append(index)
        if len(chosen) == most:
            break
    return chosen


def plot_precision_coverage(curve: list[dict], path: str | os.PathLike[str], title: str = "Abstain threshold") -> Path:
    """Precision of the non-neutral labels against coverage, one point per abstain threshold."""
    plt = _pyplot()
    points = [p for p in curve if p["n_decided"]]
    fig, ax = plt.subplots(figsize=(5.6, 4.4), dpi=120)
    ax.plot([p["coverage"] for p in points], [p["precision"] for p in points], marker=".", color="tab:purple")
    x_max = max([p["coverage"] for p in points] + [0.05]) * 1.05
    for rank, index in enumerate(spaced_labels(points, x_span=x_max)):
        p = points[index]
        ax.annotate(
            f"t={p['threshold']:.2f}",
            (p["coverage"], p["precision"]),
            textcoords="offset points",
            xytext=(5, -11 if rank % 2 else 5),  # alternate below/above the curve
            fontsize=7,
            annotation_clip=True,
        )
    ax.set_xlabel("coverage (share of pairs labelled support or contradict)")
    ax.set_ylabel("precision of those labels")
    ax.set_ylim(0, 1.08)  # room above 1.0 so labels stay clear of the title
    ax.set_xlim(0, x_max)
    ax.grid(alpha=0.3)
    ax.set_title(f"{title}\nneutral unless the top non-neutral probability >= t", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_compare(results: list[dict], path: str | os.PathLike[str], title: str) -> Path:
    """Several models on one data set, in one figure of three panels: per-class F1 (bars),
    precision against coverage over abstain thresholds, and reliability after calibration.
    Each model keeps one colour in every panel, so curves can be compared at a glance."""
    plt = _pyplot()
    fig, (bars, curve, reliability) = plt.subplots(1, 3, figsize=(15, 4.6), dpi=110)
    colours = plt.get_cmap("tab10").colors
    labels = list(results[0]["overall"]["per_class"])
    width = 0.8 / len(results)
    for index, result in enumerate(results):
        colour = colours[index % len(colours)]
        name = f"{result['model']} (macro-F1 {result['overall']['macro_f1']:.3f})"
        per_class = result["overall"]["per_class"]
        offsets = [i + (index - (len(results) - 1) / 2) * width for i in range(len(labels))]
        bars.bar(offsets, [per_class[label]["f1"] for label in labels], width=width, color=colour, label=name)
        points = [p for p in result["precision_coverage"] if p["n_decided"]]
        curve.plot([p["coverage"] for p in points], [p["precision"] for p in points], marker=".", color=colour)
        calibration = result["calibration"]
        bins = [b for b in calibration["reliability_bins"] if b["count"]]
        reliability.plot(
            [b["confidence"] for b in bins],
            [b["accuracy"] for b in bins],
            marker="o",
            color=colour,
            label=f"ECE {calibration['ece']:.3f}",
        )
    bars.set_xticks(range(len(labels)), labels)
    bars.set_ylim(0, 1.0)
    bars.set_ylabel("F1")
    bars.set_title("F1 per class", fontsize=10)
    bars.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), fontsize=8, ncol=1, frameon=False)
    curve.set_xlim(0, 1)
    curve.set_ylim(0, 1.02)
    curve.set_xlabel("coverage (share labelled support or contradict)")
    curve.set_ylabel("precision of those labels")
    curve.set_title("precision vs. coverage over abstain thresholds", fontsize=10)
    curve.grid(alpha=0.3)
    reliability.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    reliability.set_xlim(0, 1)
    reliability.set_ylim(0, 1)
    reliability.set_xlabel("confidence (top-label probability)")
    reliability.set_ylabel("accuracy in bin")
    reliability.set_title("reliability (after temperature)", fontsize=10)
    reliability.legend(loc="upper left", fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path
