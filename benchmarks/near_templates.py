"""Which groups of a dev set share a sentence template with training pairs: the closeness the
near-copy test (``tests/test_statements_train.py``) misses when only the names differ.

    python benchmarks/near_templates.py --dev benchmarks/data/statements_swapped_dev.jsonl \\
        --train data/statements_train/part23.jsonl data/statements_train/part24.jsonl \\
        --output benchmarks/results/cycle6_experiment/swapped_near_training.json

A dev row is near a training row when the mean of their premises' and hypotheses' Jaccard overlap,
on word sets with every capitalised word made one placeholder (``check.masked_words``), is at
least ``--threshold``; a dev group is flagged when any of its rows is near any training row. The
sixth cycle's rule 6 is judged on the groups left (``decide.py --swapped-exclude``): training data
the default never saw must not be what lifts the candidate on the set that judges it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
THRESHOLD = 0.40


def writers_check():
    """data/statements_train/check.py (a script the writers run, not a package module)."""
    spec = importlib.util.spec_from_file_location("statements_check", REPO / "data" / "statements_train" / "check.py")
    checker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checker)
    return checker


def read_rows(path: Path) -> list[dict]:
    """The JSON lines of ``path``."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def near_groups(dev: Path, train: list[Path], threshold: float = THRESHOLD) -> dict:
    """{"flagged": {group: [[dev id, training id, closeness], ...]}, "clean": [group, ...]} for ``dev``."""
    checker = writers_check()
    masked, jaccard = checker.masked_words, checker.jaccard
    training = [
        (row["id"], masked(row["premise"]), masked(row["hypothesis"])) for path in train for row in read_rows(path)
    ]
    flagged: dict[str, list] = {}
    groups: list[str] = []
    for row in read_rows(dev):
        group = row.get("group", row["id"])
        if group not in groups:
            groups.append(group)
        premise, hypothesis = masked(row["premise"]), masked(row["hypothesis"])
        closeness, nearest = max(
            ((jaccard(premise, p) + jaccard(hypothesis, h)) / 2, row_id) for row_id, p, h in training
        )
        if closeness >= threshold:
            flagged.setdefault(group, []).append([row["id"], nearest, round(closeness, 3)])
    return {"flagged": flagged, "clean": [group for group in groups if group not in flagged]}


def main(argv: list[str] | None = None) -> None:
    """Print the flagged groups and write them, with the clean ones, as JSON."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", required=True, type=Path)
    parser.add_argument("--train", required=True, nargs="+", type=Path)
    parser.add_argument("--threshold", type=float, default=THRESHOLD)
    parser.add_argument("--output", required=True, type=Path)
    args = parser.parse_args(argv)
    found = near_groups(args.dev, args.train, args.threshold)
    for group, rows in found["flagged"].items():
        print(group, *(f"{dev_id}~{train_id} {closeness}" for dev_id, train_id, closeness in rows))
    print(f"{len(found['flagged'])} groups flagged, {len(found['clean'])} clean")
    relative = [str(path.resolve().relative_to(REPO)) if path.resolve().is_relative_to(REPO) else str(path)
                for path in (args.dev, *args.train)]  # fmt: skip
    record = {
        "dev": relative[0],
        "train": relative[1:],
        "threshold": args.threshold,
        "measure": "mean of premise and hypothesis Jaccard on check.masked_words",
        "command": "python benchmarks/near_templates.py " + " ".join(argv),
    } | found
    args.output.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
