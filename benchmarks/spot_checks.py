"""The pairs a new user tries first: the examples and the pairs of the bug report.

Scores ``examples/statement_pairs.jsonl`` (the motivating Kremlin/Zelenskyy pair among them)
and ``examples/bug_report_pairs.jsonl`` (the five pairs of issue 10, held out: never trained
on, not in the dev set) one way round, as ``make demo`` does, and with ``--symmetric``
(both orders averaged). Ten and five pairs decide nothing statistically; they are what a
user sees, so every candidate model is checked on them before it ships. The labelled statement
sets (dev, two-party dev, test) are scored both ways too: their macro-F1 says whether
``--symmetric`` helps beyond these few pairs.

    python benchmarks/spot_checks.py [--model DIR ...]
Prints a table per model and writes benchmarks/results/spot_checks.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FILES = {
    "examples": REPO / "examples" / "statement_pairs.jsonl",
    "bug_report": REPO / "examples" / "bug_report_pairs.jsonl",
}
LABELLED = {
    "statements dev": REPO / "benchmarks" / "data" / "statements_dev.jsonl",
    "statements_parties dev": REPO / "benchmarks" / "data" / "statements_parties_dev.jsonl",
    "statements_attempts dev": REPO / "benchmarks" / "data" / "statements_attempts_dev.jsonl",
    "statements_swapped dev": REPO / "benchmarks" / "data" / "statements_swapped_dev.jsonl",
    "statements test": REPO / "benchmarks" / "data" / "statements_test.jsonl",
}


def check_model(model: str | None) -> dict:
    """Predicted label and confidence of every pair, one way round and symmetric."""
    from stance.model import StanceClassifier

    classifier = StanceClassifier.from_pretrained(model, device="cpu")
    report: dict = {"model": model or "default", "sets": {}}
    for name, path in FILES.items():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        pairs = [(row["premise"], row["hypothesis"]) for row in rows]
        one_way = classifier.predict(pairs)
        symmetric = classifier.predict(pairs, symmetric=True)
        scored = []
        for index, row in enumerate(rows):
            scored.append({
                "id": row["id"], "expected": row["expected"],
                "one_way": one_way.labels[index], "one_way_confidence": round(float(one_way.probabilities[index].max()), 3),
                "symmetric": symmetric.labels[index], "symmetric_confidence": round(float(symmetric.probabilities[index].max()), 3),
            })  # fmt: skip
        report["sets"][name] = {
            "right_one_way": sum(row["one_way"] == row["expected"] for row in scored),
            "right_symmetric": sum(row["symmetric"] == row["expected"] for row in scored),
            "n": len(scored),
            "pairs": scored,
        }
    from stance.eval.metrics import classification_metrics
    from stance.model.labels import LABELS

    report["macro_f1"] = {}
    for name, path in LABELLED.items():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        pairs = [(row["premise"], row["hypothesis"]) for row in rows]
        gold = [LABELS.index(row["label"]) for row in rows]
        report["macro_f1"][name] = {}
        for way in ("one_way", "symmetric"):
            predicted = [
                LABELS.index(label) for label in classifier.predict(pairs, symmetric=way == "symmetric").labels
            ]
            report["macro_f1"][name][way] = round(classification_metrics(gold, predicted)["macro_f1"], 4)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="*", default=[None], help="model directories (default: the embedded default)")
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "spot_checks.json"))
    args = parser.parse_args()
    reports = [check_model(model) for model in args.model]
    for report in reports:
        print(f"\n{report['model']}")
        print("| set | id | expected | one way | symmetric |")
        print("|---|---|---|---|---|")
        for name, result in report["sets"].items():
            for row in result["pairs"]:
                print(f"| {name} | {row['id']} | {row['expected']} | {row['one_way']} ({row['one_way_confidence']:.2f}) "
                      f"| {row['symmetric']} ({row['symmetric_confidence']:.2f}) |")  # fmt: skip
            print(f"| {name} | **right** | | {result['right_one_way']} / {result['n']} "
                  f"| {result['right_symmetric']} / {result['n']} |")  # fmt: skip
        for name, scores in report["macro_f1"].items():
            print(f"| {name} | **macro-F1** | | {scores['one_way']:.3f} | {scores['symmetric']:.3f} |")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    record = {"command": "python benchmarks/spot_checks.py " + " ".join(sys.argv[1:]), "models": reports}
    output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
