"""Long articles: truncation vs. window aggregations on FNC-1 dev (chooses the default).

Windows are scored once; each aggregation (max_decisive, summac, mean) combines the
same window scores. Reports 3-class macro-F1, per-class F1 and the FNC-1 weighted score.

    python benchmarks/windows.py [--model DIR] [--rows N]
Prints a table and writes benchmarks/results/windows.json.
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
from stance.model.windows import AGGREGATIONS, combine_windows, score_windows
from stance.training.config import DatasetConfig
from stance.training.data import load_dataset_file

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("STANCE_DATA_DIR", REPO.parent / "shared" / "data"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--rows", type=int, default=None, help="a seeded sample of dev rows (default: all 5,355)")
    parser.add_argument("--max-length", type=int, default=None)
    args = parser.parse_args()
    classifier = StanceClassifier.from_pretrained(args.model, max_length=args.max_length)
    data = load_dataset_file(DatasetConfig(path=str(DATA / "fnc1" / "dev.jsonl"), name="fnc1", max_rows=args.rows))
    y_true = np.asarray(data.labels)
    rows = []

    def record(name: str, probabilities: np.ndarray, seconds: float, windows: int | None = None) -> None:
        predicted = probabilities.argmax(axis=1)
        metrics = classification_metrics(y_true, predicted)
        four_way = [{0: "agree", 1: "disagree"}.get(int(p), "discuss") for p in predicted]
        rows.append(
            {
                "mode": name,
                "macro_f1": round(metrics["macro_f1"], 4),
                "f1": {k: round(v["f1"], 4) for k, v in metrics["per_class"].items()},
                "fnc1_relative_neutral_as_discuss": round(fnc1_score(data.source_labels, four_way)["relative"], 4),
                "seconds": round(seconds, 1),
                "windows": windows,
            }
        )

    started = time.perf_counter()
    truncated = classifier.predict(data.premises, data.hypotheses, long_text="truncate", batch_size=64, progress=True)
    record(f"truncate ({classifier.max_length} tokens)", truncated.probabilities, time.perf_counter() - started)
    started = time.perf_counter()
    scores = score_windows(classifier, data.premises, data.hypotheses, batch_size=64, progress=True)
    window_seconds = time.perf_counter() - started
    for method in AGGREGATIONS:
        record(f"window / {method}", combine_windows(scores, method).probabilities, window_seconds, len(scores.owners))
    result = {"model": args.model or "default", "rows": len(data), "max_length": classifier.max_length, "runs": rows}
    output = REPO / "benchmarks" / "results" / "windows.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"FNC-1 dev, {len(data):,} pairs, max_length {classifier.max_length}")
    print("| mode | macro-F1 | F1 support | F1 contradict | F1 neutral | FNC-1 score (neutral=discuss) | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        f1 = r["f1"]
        print(
            f"| {r['mode']} | {r['macro_f1']:.4f} | {f1['support']:.3f} | {f1['contradict']:.3f} | {f1['neutral']:.3f} | {r['fnc1_relative_neutral_as_discuss']:.3f} | {r['seconds']} |"
        )
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
