"""Long premises: truncate vs. windows vs. evidence selection, on FNC-1 dev and ARC dev.

Modes: ``truncate``; ``window`` (scored once, each aggregation combines the same window
scores); ``evidence`` with the ``lexical`` (BM25) and the ``embedding`` (MiniLM) ranker.
Reports 3-class macro-F1, per-class F1 (contradict F1 is what long articles make hard),
the FNC-1 weighted score (FNC-1 only), and seconds per 1,000 pairs (selection included).

    python benchmarks/windows.py [--model DIR] [--rows N] [--datasets fnc1 arc] [--rankers ...]
        [--aggregations ...] [--output FILE]
Prints a table and writes benchmarks/results/windows.json (or --output).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from stance.eval.metrics import classification_metrics, fnc1_score
from stance.model import StanceClassifier
from stance.model.evidence import RANKERS
from stance.model.windows import AGGREGATIONS, combine_windows, score_windows
from stance.training.config import DatasetConfig
from stance.training.data import load_dataset_file

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("STANCE_DATA_DIR", REPO.parent / "shared" / "data"))


def evaluate(
    classifier: StanceClassifier, name: str, rows: int | None, aggregations: list[str], rankers: list[str]
) -> list[dict]:
    """Every mode on one data set's dev split (a seeded sample of ``rows`` when given): truncate,
    evidence with each of ``rankers``, and windows combined by each of ``aggregations``."""
    data = load_dataset_file(DatasetConfig(path=str(DATA / name / "dev.jsonl"), name=name, max_rows=rows))
    y_true = np.asarray(data.labels)
    results = []

    def record(mode: str, probabilities: np.ndarray, seconds: float, extra: dict | None = None) -> None:
        predicted = probabilities.argmax(axis=1)
        metrics = classification_metrics(y_true, predicted)
        row = {
            "dataset": name,
            "rows": len(data),
            "mode": mode,
            "macro_f1": round(metrics["macro_f1"], 4),
            "f1": {k: round(v["f1"], 4) for k, v in metrics["per_class"].items()},
            "seconds": round(seconds, 1),
            "seconds_per_1000": round(1000 * seconds / len(data), 1),
        } | (extra or {})
        if name == "fnc1":
            four_way = [{0: "agree", 1: "disagree"}.get(int(p), "discuss") for p in predicted]
            row["fnc1_relative_neutral_as_discuss"] = round(fnc1_score(data.source_labels, four_way)["relative"], 4)
        results.append(row)

    started = time.perf_counter()
    plain = classifier.predict(data.premises, data.hypotheses, long_text="truncate", progress=True)
    record(f"truncate ({classifier.max_length} tokens)", plain.probabilities, time.perf_counter() - started,
           {"truncated_rows": int(plain.truncated.sum())})  # fmt: skip
    for ranker in rankers:
        classifier.metadata.evidence_ranker = ranker
        started = time.perf_counter()
        chosen = classifier.predict(data.premises, data.hypotheses, long_text="evidence", progress=True)
        kept = [sum(b - a for a, b in spans) / max(len(p), 1) for spans, p in zip(chosen.evidence_spans,
                data.premises, strict=True)]  # fmt: skip
        record(f"evidence / {ranker}", chosen.probabilities, time.perf_counter() - started,
               {"mean_share_of_premise_kept": round(float(np.mean(kept)), 3)})  # fmt: skip
    if aggregations:
        started = time.perf_counter()
        scores = score_windows(classifier, data.premises, data.hypotheses, progress=True)
        seconds = time.perf_counter() - started
        for method in aggregations:
            record(f"window / {method}", combine_windows(scores, method).probabilities, seconds,
                   {"windows": len(scores.owners)})  # fmt: skip
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument(
        "--rows", type=int, default=None, help="a seeded sample of dev rows per data set (default: all)"
    )
    parser.add_argument("--datasets", nargs="*", default=["fnc1", "arc"], choices=["fnc1", "arc"])
    parser.add_argument("--aggregations", nargs="*", default=list(AGGREGATIONS), choices=list(AGGREGATIONS))
    parser.add_argument("--rankers", nargs="*", default=list(RANKERS), choices=list(RANKERS))
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "windows.json"))
    args = parser.parse_args()
    classifier = StanceClassifier.from_pretrained(args.model, max_length=args.max_length, device="cpu")
    runs = [
        row for name in args.datasets for row in evaluate(classifier, name, args.rows, args.aggregations, args.rankers)
    ]
    result = {
        "model": args.model or "default",
        "max_length": classifier.max_length,
        "command": "python benchmarks/windows.py " + " ".join(sys.argv[1:]),
        "runs": runs,
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"max_length {classifier.max_length}")
    print("| data set | rows | mode | macro-F1 | F1 support | F1 contradict | F1 neutral | s / 1,000 pairs |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for r in runs:
        f1 = r["f1"]
        print(
            f"| {r['dataset']} | {r['rows']:,} | {r['mode']} | {r['macro_f1']:.4f} | {f1['support']:.3f} | "
            f"{f1['contradict']:.3f} | {f1['neutral']:.3f} | {r['seconds_per_1000']} |"
        )
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
