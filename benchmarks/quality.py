"""Quality side by side: the default model vs. the previous default, TF-IDF + LR, a
hypothesis-only TF-IDF + LR, and the majority class.

On every data set's dev and test split in ../shared/data (FNC-1, ARC, counterfactual SNLI
and negation NLI: dev only; their test sets are hidden holdouts; ``--splits dev`` scores the dev
splits alone) and on our hand-written
statement sets (benchmarks/data/statements_dev.jsonl and statements_test.jsonl, with accuracy per
kind; the test set was written after every choice and never steered one). Baselines
train on the data set's own train split; for the statement sets, on the hand-written
statement training files (data/statements_train/) the scored model trained on, as its
stance.json records them (every part for a model that records none). Two-class sets (perspectrum, ibm_claim_stance) are
scored on support vs. contradict: the model's argmax over those two classes, as the data
README advises; the rate at which it would have said neutral is reported too.

    python benchmarks/quality.py                                  # default + previous default
    python benchmarks/quality.py --model runs/sick --datasets sick --no-reference
    python benchmarks/quality.py --no-reference --backend torch-bf16 --output benchmarks/results/quality_bf16.json
    python benchmarks/quality.py --no-reference --datasets sick --add-to earlier.json --output all.json
Prints a Markdown table and writes benchmarks/results/quality.json, with the SHA-256 of the scored
model's files (``model_sha256``). ``--add-to`` grows an earlier result of the same files: its
``command`` and ``machine`` stay at the top, and each later run is an ``added`` entry with its own
command, machine and the (set, split) pairs it scored.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from stance.eval.evaluate import FNC1_LABELS
from stance.eval.metrics import classification_metrics
from stance.model import LABEL2ID, LABELS, StanceClassifier
from stance.model.classifier import BACKENDS
from stance.training.baselines import HypothesisOnlyBaseline, MajorityBaseline, TfidfBaseline
from stance.training.config import DatasetConfig
from stance.training.data import PairData, load_dataset_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_sets import SPLITS  # noqa: E402
from recipe_dev import model_digest  # noqa: E402
from throughput import machine_facts  # noqa: E402  (bf16 and int8 results depend on the CPU)

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("STANCE_DATA_DIR", REPO.parent / "shared" / "data"))
STATEMENTS = REPO / "benchmarks" / "data"  # statements_dev.jsonl (choices), statements_test.jsonl (never)
# The embedded default before the general-NLI recipe (LoRA on the stance sets only), kept
# as a named reference so every table shows what changed.
REFERENCE = REPO / "benchmarks" / "reference" / "default-v1"
TWO_CLASS = {"perspectrum", "ibm_claim_stance"}
# Ours, in benchmarks/data: the statement sets, two parties' statements side by side
# (statements_parties_dev.jsonl, written for the case of the Kremlin/Zelenskyy example), and an
# attempt asserted as fact against the accused's denial (statements_attempts_dev.jsonl),
# numbers and dates by subkind (statements_numbers_dev.jsonl, written after the model's weakest kind)
# and swapped actors by subkind (statements_swapped_dev.jsonl, written after the next weakest).
OURS = {"statements", "statements_parties", "statements_attempts", "statements_numbers", "statements_swapped"}


def split_path(name: str, split: str) -> Path:
    """Where a data set's split lives (the statement sets are ours, in benchmarks/data)."""
    return STATEMENTS / f"{name}_{split}.jsonl" if name in OURS else DATA / name / f"{split}.jsonl"


def statement_training_files(classifier: StanceClassifier) -> list[Path]:
    """The hand-written statement files (data/statements_train/) ``classifier`` was trained on,
    read from its data fingerprints; every part when it records none (a model trained elsewhere)."""
    folder = REPO / "data" / "statements_train"
    recorded = classifier.metadata.data_fingerprints.get("train", {}).values()
    used = sorted({(REPO / entry["path"]).resolve() for entry in recorded if "statements_train/" in entry["path"]})
    return used or sorted(folder.glob("part*.jsonl"))


def train_data(name: str, statement_files: list[Path]):
    """What the baselines train on: the data set's train split; for the statement sets, the
    hand-written statement training pairs the scored model trained on (``statement_files``),
    so the baselines see the same in-domain data as the model."""
    if name not in OURS:
        return load_dataset_file(DatasetConfig(path=str(DATA / name / "train.jsonl"), name=name))
    data = PairData()
    for path in statement_files:
        data.extend(load_dataset_file(DatasetConfig(path=str(path), name=name)))
    return data


def model_predictions(classifier: StanceClassifier, data, two_class: bool, long_text: str) -> tuple[np.ndarray, float]:
    result = classifier.predict(data.premises, data.hypotheses, batch_size=32, long_text=long_text, progress=True)
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


def per_kind_accuracy(path: Path, predicted: np.ndarray, labels: list[int]) -> dict[str, dict]:
    """Accuracy per ``kind`` of the statement set (the targets ask for >= 70% on each); per
    ``subkind`` where rows have one (the numbers and swapped-actors sets, whose rows share one kind)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    kinds = [row.get("subkind", row["kind"]) for row in rows]
    right: dict[str, list[bool]] = defaultdict(list)
    for kind, guess, gold in zip(kinds, predicted, labels, strict=True):
        right[kind].append(bool(guess == gold))
    return {kind: {"accuracy": round(float(np.mean(v)), 4), "n": len(v)} for kind, v in sorted(right.items())}


def by_source_label(data: PairData, predicted: np.ndarray) -> dict[str, dict[str, int]] | None:
    """Predictions counted per four-way source label (FNC-1 and ARC's agree / disagree / discuss /
    unrelated), which shows which kind of neutral row is called contradict; None for sets whose
    source label is the canonical label itself."""
    if not set(data.source_labels) <= FNC1_LABELS:  # the others' source labels map one to one
        return None
    counts: dict[str, dict[str, int]] = {}
    for source_label, guess in zip(data.source_labels, predicted, strict=True):
        row = counts.setdefault(source_label, dict.fromkeys(LABEL2ID, 0))
        row[LABELS[guess]] += 1
    return dict(sorted(counts.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model directory (default: the embedded default)")
    parser.add_argument("--reference", default=str(REFERENCE), help="a second model to compare (the previous default)")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference model")
    parser.add_argument("--datasets", nargs="*", default=list(SPLITS), choices=list(SPLITS))
    parser.add_argument("--fnc1-long-text", nargs="*", default=["truncate"], help="modes to report on FNC-1 and ARC")
    parser.add_argument(
        "--backend", default="torch", choices=BACKENDS, help="backend of the scored model (the reference runs in fp32)"
    )
    parser.add_argument(
        "--splits",
        nargs="+",
        default=["dev", "test"],
        choices=["dev", "test"],
        help="which splits to score (a data set without one is skipped there); dev alone keeps the "
        "test splits unread while an experiment is still deciding",
    )
    parser.add_argument(
        "--add-to",
        default=None,
        metavar="FILE",
        help="an earlier result of the same model files (its recorded model_sha256), backend and reference: "
        "keep its rows of other data sets and splits, replace those scored now, and write the union to --output",
    )
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "quality.json"))
    args = parser.parse_args(argv)
    if not DATA.exists():
        print(f"data not found at {DATA}; set STANCE_DATA_DIR", file=sys.stderr)
        return 2
    model_sha256 = model_digest(args.model or "default")
    earlier = None if args.add_to is None else earlier_result(Path(args.add_to), args, model_sha256)
    models = {"model": StanceClassifier.from_pretrained(args.model, device="cpu", backend=args.backend)}
    if not args.no_reference:
        models["previous default"] = StanceClassifier.from_pretrained(args.reference, device="cpu")
    command = "python benchmarks/quality.py " + " ".join(argv or sys.argv[1:])
    results: dict = {"model": args.model or "default", "model_sha256": model_sha256, "backend": args.backend}
    results |= {"machine": machine_facts(), "reference": None if args.no_reference else args.reference}
    results |= {"data_dir": str(DATA), "command": command}
    statement_files = statement_training_files(models["model"])
    results["statement_training_files"] = [str(path.relative_to(REPO)) for path in statement_files]
    results["rows"] = []
    scored_now: list[list[str]] = []  # (set, split) pairs, appended as each is written
    if earlier is not None:
        # The earlier run's provenance stays at the top; this run's is one more "added" entry.
        results |= {key: earlier[key] for key in ("command", "machine") if key in earlier}
        results["added"] = [*earlier.get("added", []), {"command": command, "machine": machine_facts()}]
        results["added"][-1]["scored"] = scored_now
        replaced = {(name, split) for name in args.datasets for split in SPLITS[name] if split in args.splits}
        results["rows"] = [row for row in earlier["rows"] if (row["dataset"], row["split"]) not in replaced]
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    for name in args.datasets:
        splits = [split for split in SPLITS[name] if split in args.splits]
        if not splits:
            continue
        train = train_data(name, statement_files)
        baselines = {
            "tfidf_lr": TfidfBaseline().fit(train),
            "hypothesis_only_tfidf_lr": HypothesisOnlyBaseline().fit(train),
            "majority": MajorityBaseline().fit(train),
        }
        for split in splits:
            path = split_path(name, split)
            data = load_dataset_file(DatasetConfig(path=str(path), name=name))
            two_class = name in TWO_CLASS
            modes = args.fnc1_long_text if name in ("fnc1", "arc") else ["truncate"]
            for system, classifier in models.items():
                for mode in modes:
                    started = time.perf_counter()
                    predicted, neutral_rate = model_predictions(classifier, data, two_class, mode)
                    label = system if mode == "truncate" else f"{system} ({mode})"
                    row = {"dataset": name, "split": split, "system": label, "long_text": mode}
                    row |= summary(classification_metrics(data.labels, predicted))
                    row["seconds"] = round(time.perf_counter() - started, 1)
                    if two_class:
                        row["neutral_rate_before_2way_argmax"] = round(neutral_rate, 4)
                    if (counts := by_source_label(data, predicted)) is not None:
                        row["by_source_label"] = counts
                    if name in OURS:
                        row["per_kind"] = per_kind_accuracy(path, predicted, data.labels)
                    results["rows"].append(row)
            for system, baseline in baselines.items():
                row = {"dataset": name, "split": split, "system": system} | summary(
                    classification_metrics(data.labels, baseline.predict(data))
                )
                results["rows"].append(row)
            scored_now.append([name, split])
            output.write_text(json.dumps(results, indent=2) + "\n")  # after every split: partial results survive
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(render(results))
    print(f"\nwrote {output}")
    return 0


def earlier_result(path: Path, args: argparse.Namespace, model_sha256: str | None) -> dict:
    """The result ``--add-to`` names, refused unless it records the digest of the same model files
    (``model_sha256``, taken when it was scored: the same adapter exported to ``model/default``
    qualifies, a folder retrained since does not) and the same backend and reference."""
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"--add-to {path}: cannot read it as a quality.py result ({error})") from None
    if not isinstance(earlier, dict) or not isinstance(earlier.get("rows"), list):
        raise SystemExit(f"--add-to {path}: not a quality.py result (no list of rows)")
    now = args.model or "default"
    if model_sha256 is None:
        raise SystemExit(f"--add-to: {now!r} is not a local model folder, so its files cannot be compared")
    if earlier.get("model_sha256") is None:
        raise SystemExit(
            f"--add-to {path}: it records no model_sha256 (written before 2026-11-27 or of a hub model), "
            "so it cannot be shown to hold the same model; score every set again instead"
        )
    if earlier["model_sha256"] != model_sha256:
        raise SystemExit(f"--add-to {path}: it scored {earlier.get('model')!r} with other files than {now!r} holds now")
    reference = None if args.no_reference else args.reference
    for key, value in (("backend", args.backend), ("reference", reference)):
        if earlier.get(key) != value:
            raise SystemExit(f"--add-to {path}: its {key} is {earlier.get(key)!r}, this run's {value!r}")
    return earlier


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
    for row in results["rows"]:
        if "by_source_label" in row:
            lines += ["", f"{row['dataset']} {row['split']}, predictions per source label ({row['system']}):", ""]
            lines += ["| source label | " + " | ".join(LABEL2ID) + " |", "|---|" + "---:|" * len(LABEL2ID)]
            for source_label, counts in row["by_source_label"].items():
                lines.append(f"| {source_label} | " + " | ".join(f"{n:,}" for n in counts.values()) + " |")
    for row in results["rows"]:
        if "per_kind" in row:
            lines += ["", f"Statement set, accuracy per kind ({row['system']}):", ""]
            lines += ["| kind | accuracy | n |", "|---|---:|---:|"]
            lines += [f"| {kind} | {v['accuracy']:.3f} | {v['n']} |" for kind, v in row["per_kind"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
