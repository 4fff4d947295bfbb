"""Markdown tables for the model card from benchmarks/results/quality*.json.

    python benchmarks/card_tables.py
Reads quality.json (the default model and the baselines) and, when present,
quality_previous_default.json (the previous default, run with --model
benchmarks/reference/default-v1 --no-reference) and quality_stage1.json (the default's stage 1
alone, run with --model runs/default --no-reference) and quality_stage2_first.json (the first
two-stage default, 2,400 statement pairs in stage 2), and prints one table of macro-F1 per data
set and split, one of per-class F1 for the default, and the statement set by kind.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SYSTEMS = (
    "model", "first stage 2", "stage 1", "previous default", "tfidf_lr", "hypothesis_only_tfidf_lr", "majority",
)  # fmt: skip
TITLES = {
    "model": "default (this recipe)",
    "first stage 2": "first two-stage (2,400 pairs)",
    "stage 1": "stage 1 only",
    "previous default": "previous default",
    "tfidf_lr": "TF-IDF + LR",
    "hypothesis_only_tfidf_lr": "hypothesis only",
    "majority": "majority",
}


def load() -> list[dict]:
    rows = json.loads((RESULTS / "quality.json").read_text())["rows"]
    for file, system in (
        ("quality_previous_default.json", "previous default"),
        ("quality_stage1.json", "stage 1"),
        ("quality_stage2_first.json", "first stage 2"),
    ):
        path = RESULTS / file
        if path.exists():
            rows += [
                row | {"system": system} for row in json.loads(path.read_text())["rows"] if row["system"] == "model"
            ]
    return rows


def main() -> int:
    rows = load()
    keys = list(dict.fromkeys((r["dataset"], r["split"]) for r in rows))
    table = {(r["dataset"], r["split"], r["system"]): r for r in rows}
    print("| data set | split | n | " + " | ".join(TITLES[s] for s in SYSTEMS) + " |")
    print("|---|---|---:|" + "---:|" * len(SYSTEMS))
    for dataset, split in keys:
        n = next(r["n"] for r in rows if (r["dataset"], r["split"]) == (dataset, split))
        cells = []
        for system in SYSTEMS:
            row = table.get((dataset, split, system))
            value = "-" if row is None else f"{row['macro_f1']:.3f}"
            cells.append(f"**{value}**" if system == "model" else value)
        print(f"| {dataset} | {split} | {n:,} | " + " | ".join(cells) + " |")
    print()
    print("| data set | split | F1 support | F1 contradict | F1 neutral | accuracy | confusion (rows: true s/c/n) |")
    print("|---|---|---:|---:|---:|---:|---|")
    for dataset, split in keys:
        row = table.get((dataset, split, "model"))
        if row is None:
            continue
        f1 = row["f1"]
        matrix = " ".join(f"`{line}`" for line in row["confusion_matrix"])
        print(f"| {dataset} | {split} | {f1['support']:.3f} | {f1['contradict']:.3f} | {f1['neutral']:.3f} | "
              f"{row['accuracy']:.3f} | {matrix} |")  # fmt: skip
    for system in ("model", "first stage 2", "previous default"):
        row = table.get(("statements", "dev", system))
        if row and "per_kind" in row:
            print(f"\nStatement set by kind, accuracy ({TITLES[system]}):\n")
            print("| kind | accuracy | n |\n|---|---:|---:|")
            for kind, value in row["per_kind"].items():
                print(f"| {kind} | {value['accuracy']:.3f} | {value['n']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
