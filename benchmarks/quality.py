"""Quality side by side: a stance model vs. TF-IDF + LR and majority-class baselines.

On every data set's dev and test split in ../shared/data (FNC-1: dev only; its test
set is a hidden holdout). Baselines train on the data set's own train split. Two-class
sets (perspectrum, ibm_claim_stance) are scored on support vs. contradict: the model's
argmax over those two classes, as the data README advises; the rate at which it would
have said neutral is reported too.

    python benchmarks/quality.py                       # the embedded default model
    python benchmarks/quality.py --model runs/sick --datasets sick
Prints a Markdown table and writes benchmarks/results/quality.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from stance.eval.metrics import classification_metrics
from stance.model import LABEL2ID, StanceClassifier
from stance.training.baselines import MajorityBaseline, TfidfBaseline
from stance.training.config import DatasetConfig
from stance.training.data import load_dataset_file

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("STANCE_DATA_DIR", REPO.parent / "shared" / "data"))
SPLITS = {
    "sick": ("dev", "test"),
    "fnc1": ("dev",),
    "emergent": ("dev", "test"),
    "climate_fever": ("dev", "test"),
    "perspectrum": ("dev", "test"),
    "ibm_claim_stance": ("dev", "test"),
}
TWO_CLASS = {"perspectrum", "ibm_claim_stance"}


def model_predictions(classifier: StanceClassifier, data, two_class: bool, long_text: str) -> tuple[np.ndarray, float]:
    result = classifier.predict(data.premises, data.hypotheses, batch_size=64, long_text=long_text, progress=True)
    if not two_class:
        return result.probabilities.argmax(axis=1), 0.0
    neutral_rate = float((result.probabilities.argmax(axis=1) == LABEL2ID["neutral"]).mean())
    pair = [LABEL2ID["support"], LABEL2ID["contradict"]]
    return np.asarray(pair)[result.probabilities[:, pair].argmax(axis=1)], neutral_rate


def summary(metrics: dict) -> dict:
    return {
        "macro_f1": round(metrics["macro_f1"], 4),
        "accuracy": round(metrics["accuracy"], 4),
        "f1": {label: round(v["f1"], 4) for label, v in metrics["per_class"].items()},
        "confusion_matrix": metrics["confusion_matrix"],
        "n": metrics["n"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model directory (default: the embedded default)")
    parser.add_argument("--datasets", nargs="*", default=list(SPLITS), choices=list(SPLITS))
    parser.add_argument("--fnc1-long-text", nargs="*", default=["truncate", "window"], help="modes to report on FNC-1")
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "quality.json"))
    args = parser.parse_args(argv)
    if not DATA.exists():
        print(f"data not found at {DATA}; set STANCE_DATA_DIR", file=sys.stderr)
        return 2
    classifier = StanceClassifier.from_pretrained(args.model)
    results: dict = {"model": args.model or "default", "data_dir": str(DATA), "rows": []}
    for name in args.datasets:
        train = load_dataset_file(DatasetConfig(path=str(DATA / name / "train.jsonl"), name=name))
        baselines = {"majority": MajorityBaseline().fit(train), "tfidf_lr": TfidfBaseline().fit(train)}
        for split in SPLITS[name]:
            data = load_dataset_file(DatasetConfig(path=str(DATA / name / f"{split}.jsonl"), name=name))
            two_class = name in TWO_CLASS
            modes = args.fnc1_long_text if name == "fnc1" else ["truncate"]
            for mode in modes:
                started = time.perf_counter()
                predicted, neutral_rate = model_predictions(classifier, data, two_class, mode)
                row = {"dataset": name, "split": split, "system": "model" if mode == "truncate" else f"model ({mode})"}
                row |= summary(classification_metrics(data.labels, predicted)) | {
                    "seconds": round(time.perf_counter() - started, 1)
                }
                if two_class:
                    row["neutral_rate_before_2way_argmax"] = round(neutral_rate, 4)
                results["rows"].append(row)
            for system, baseline in baselines.items():
                row = {"dataset": name, "split": split, "system": system} | summary(
                    classification_metrics(data.labels, baseline.predict(data))
                )
                results["rows"].append(row)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(render(results))
    print(f"\nwrote {output}")
    return 0


def render(results: dict) -> str:
    lines = [
        "| data set | split | system | macro-F1 | F1 support | F1 contradict | F1 neutral | accuracy | n |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        f1 = row["f1"]
        lines.append(
            f"| {row['dataset']} | {row['split']} | {row['system']} | {row['macro_f1']:.3f} | {f1['support']:.3f} | "
            f"{f1['contradict']:.3f} | {f1['neutral']:.3f} | {row['accuracy']:.3f} | {row['n']:,} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
