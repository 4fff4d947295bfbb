"""Markdown tables for the model card from benchmarks/results/quality*.json.

    python benchmarks/card_tables.py
Reads quality.json (the default model and the baselines) and, when present,
quality_previous_default.json (the previous default, run with --model
benchmarks/reference/default-v1 --no-reference) and quality_stage1.json (the default's stage 1
alone, run with --model runs/default --no-reference) and quality_stage2_6k.json (the stage-2
experiment on all 5,973 statement pairs, configs/default-stage2-6k.yaml, not shipped; kept in the
JSON, not the table) and quality_stage2_attempts.json (configs/default-stage2-attempts.yaml: all 7,410
pairs, the attempt pairs included; not shipped) and quality_stage2_2400.json
(configs/default-stage2.yaml, the default until 2026-11-26), and prints one table of macro-F1 per data
set and split, one of per-class F1 for the default, and the statement set by kind.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SYSTEMS = (
    "model", "7.4k pairs", "2.4k pairs", "stage 1", "previous default", "tfidf_lr", "hypothesis_only_tfidf_lr", "majority",
)  # fmt: skip
TITLES = {
    "model": "default (this recipe)",
    "2.4k pairs": "stage 2 on 2,400 pairs (default until 2026-11-26)",
    "7.4k pairs": "stage 2 on 7,410 pairs, attempts included (not shipped)",
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
        ("quality_stage2_attempts.json", "7.4k pairs"),
        ("quality_stage2_2400.json", "2.4k pairs"),
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
    columns = [(split, system) for split in ("dev", "test") for system in ("model", "2.4k pairs", "previous default")]
    columns = [c for c in columns if "per_kind" in table.get(("statements", *c), {})]
    if columns:
        print("\nStatement sets by kind, accuracy (n: dev / test):\n")
        print("| kind | n | " + " | ".join(f"{split}: {TITLES[system]}" for split, system in columns) + " |")
        print("|---|---:|" + "---:|" * len(columns))
        kinds = table[("statements", *columns[0])]["per_kind"]
        for kind in kinds:
            counts = [table[("statements", split, "model")]["per_kind"].get(kind, {}).get("n", 0)
                      for split in ("dev", "test") if ("statements", split, "model") in table]  # fmt: skip
            cells = [f"{table[('statements', *c)]['per_kind'][kind]['accuracy']:.3f}" for c in columns]
            print(f"| {kind} | {' / '.join(map(str, counts))} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
