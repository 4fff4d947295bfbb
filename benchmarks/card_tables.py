"""Markdown tables for the model card from benchmarks/results/quality*.json.

    python benchmarks/card_tables.py
Reads quality.json (the default model, all-mpnet-base-v2 + LoRA, and the baselines) and, when
present, quality_default_cycle4.json and quality_default_3600.json (the defaults that later cycles
replaced: the fourth cycle's, shipped 2026-11-27, and the 3,600-step one before it),
quality_fast.json (the MiniLM, `--model fast`, the default until 2026-11-26, run as
`python benchmarks/quality.py --model fast --no-reference`) and quality_previous_default.json (the
default when issue 10 was filed, run with --model benchmarks/reference/default-v1 --no-reference),
and prints one table of macro-F1 per data set and split, one of per-class F1 for the default, the
statement sets by kind, and the numbers-and-dates and swapped-actors sets by subkind. The MiniLM's own stages and experiments are in model/fast/README.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_sets import SPLITS  # noqa: E402  (quality.py's order; importing quality.py would load torch)

RESULTS = Path(__file__).resolve().parent / "results"
BASELINES = ("tfidf_lr", "hypothesis_only_tfidf_lr", "majority")
SYSTEMS = ("model", "default cycle4", "default 3600", "fast", "previous default", *BASELINES)
# our one-kind sets, whose rows carry a subkind (quality.py's per_kind is by subkind for them)
SUBKIND_SETS = {"statements_numbers": "Numbers and dates", "statements_swapped": "Swapped actors"}
TITLES = {
    "model": "default (mpnet + LoRA)",
    "default cycle4": "the fourth-cycle default (replaced)",
    "default 3600": "the 3,600-step default (replaced)",
    "fast": "fast (MiniLM; default until 2026-11-26)",
    "previous default": "default when issue 10 was filed",
    "tfidf_lr": "TF-IDF + LR",
    "hypothesis_only_tfidf_lr": "hypothesis only",
    "majority": "majority",
}


def load() -> list[dict]:
    rows = json.loads((RESULTS / "quality.json").read_text())["rows"]
    # The numbers-and-dates set came after the 3,600-step default's quality.json was measured: its
    # run (python benchmarks/quality.py --datasets statements_numbers --output .../quality_numbers.json)
    # belongs to that model, which quality_default_3600.json holds once a later default replaced it.
    numbers = RESULTS / "quality_numbers.json"
    numbers_rows = json.loads(numbers.read_text())["rows"] if numbers.exists() else []
    if (RESULTS / "quality_default_3600.json").exists():  # its "model" rows are that default's
        numbers_rows = [row | {"system": "default 3600"} if row["system"] == "model" else row for row in numbers_rows]
        numbers_rows = [row for row in numbers_rows if row["system"] not in BASELINES]  # quality.json has its own
    rows += numbers_rows
    for file, system in (
        ("quality_default_cycle4.json", "default cycle4"),
        ("quality_default_3600.json", "default 3600"),
        ("quality_fast.json", "fast"),
        ("quality_previous_default.json", "previous default"),
        # the swapped-actors set came after these models' files: each was scored on it alone, later
        # (python benchmarks/quality.py --model M --no-reference --datasets statements_swapped --output ...)
        ("quality_swapped_default_3600.json", "default 3600"),
        ("quality_swapped_fast.json", "fast"),
        ("quality_swapped_previous_default.json", "previous default"),
    ):
        path = RESULTS / file
        if path.exists():
            rows += [
                row | {"system": system} for row in json.loads(path.read_text())["rows"] if row["system"] == "model"
            ]
    return rows


def main() -> int:
    rows = load()
    # in quality.py's order of data sets (a file grown with --add-to lists its first sets first)
    order = {name: index for index, name in enumerate(SPLITS)}
    keys = sorted(dict.fromkeys((r["dataset"], r["split"]) for r in rows), key=lambda k: (order.get(k[0], 99), k[1]))
    table = {(r["dataset"], r["split"], r["system"]): r for r in rows}
    systems = [system for system in SYSTEMS if any(r["system"] == system for r in rows)]
    print("| data set | split | n | " + " | ".join(TITLES[s] for s in systems) + " |")
    print("|---|---|---:|" + "---:|" * len(systems))
    for dataset, split in keys:
        n = next(r["n"] for r in rows if (r["dataset"], r["split"]) == (dataset, split))
        cells = []
        for system in systems:
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
    columns = [(split, system) for split in ("dev", "test") for system in SYSTEMS if system not in BASELINES]
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
    for dataset, title in SUBKIND_SETS.items():
        scored = [system for system in systems if "per_kind" in table.get((dataset, "dev", system), {})]
        if not scored:
            continue
        print(f"\n{title} dev set by subkind, accuracy:\n")
        print("| subkind | n | " + " | ".join(TITLES[system] for system in scored) + " |")
        print("|---|---:|" + "---:|" * len(scored))
        for subkind, value in table[(dataset, "dev", scored[0])]["per_kind"].items():
            cells = [f"{table[(dataset, 'dev', s)]['per_kind'][subkind]['accuracy']:.3f}" for s in scored]
            print(f"| {subkind} | {value['n']} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
