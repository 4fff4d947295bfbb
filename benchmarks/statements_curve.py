"""What limits the statement score: a data-size curve.

Fine-tunes one base model on growing, seeded subsets of the hand-written statement training
pairs (data/statements_train/, whole premise triplets) and nothing else, and evaluates each
run on the statement dev set (benchmarks/data/statements_dev.jsonl) and MultiNLI dev (to show
what the narrow data costs on general NLI). Every run has the same recipe and epochs; only the
number of statement pairs changes, so the slope says whether more such pairs would help.

    python benchmarks/statements_curve.py --base runs/default --sizes 0 150 300 600 1200
Prints a Markdown table, writes benchmarks/results/statements_curve.json and a plot
(benchmarks/results/statements_curve.png).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("STANCE_DATA_DIR", REPO.parent / "shared" / "data"))
TRAIN_PARTS = sorted((REPO / "data" / "statements_train").glob("part*.jsonl"))
DEV_SETS = {
    "statements": REPO / "benchmarks" / "data" / "statements_dev.jsonl",
    "mnli_taxinli": DATA / "mnli_taxinli" / "dev.jsonl",
}


def triplet_subset(size: int, seed: int, target: Path) -> int:
    """Write ``size`` pairs (whole premise groups, seeded) of the statement training pairs."""
    groups: dict[str, list[str]] = {}
    for path in TRAIN_PARTS:
        for line in path.read_text(encoding="utf-8").splitlines():
            groups.setdefault(json.loads(line)["group"], []).append(line)
    names = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(names))
    lines: list[str] = []
    for index in order:
        if len(lines) >= size:
            break
        lines += groups[names[index]]
    target.write_text("".join(line + "\n" for line in lines[:size]), encoding="utf-8")
    return len(lines[:size])


def evaluate(
    model: str | Path, dev_sets: dict[str, Path] | None = None, max_rows: int | None = None
) -> dict[str, float]:
    """Macro-F1 of ``model`` on each dev set (``DEV_SETS`` unless given; a seeded ``max_rows`` sample)."""
    from stance.eval.metrics import classification_metrics
    from stance.model import StanceClassifier
    from stance.training.config import DatasetConfig
    from stance.training.data import load_dataset_file

    classifier = StanceClassifier.from_pretrained(model, device="cpu")
    scores = {}
    for name, path in (dev_sets or DEV_SETS).items():
        data = load_dataset_file(DatasetConfig(path=str(path), name=name, max_rows=max_rows))
        predicted = classifier.predict(data.premises, data.hypotheses, batch_size=64).probabilities.argmax(axis=1)
        scores[name] = round(classification_metrics(data.labels, predicted)["macro_f1"], 4)
    return scores


# A short benchmark run: no evaluation, calibration or checkpoints, only the final model.
QUICK_RUN = (
    "training.eval_strategy='no'",
    "training.calibrate=false",
    "training.keep_checkpoints=false",
    "training.logging_steps=1000",
)


def fine_tune(base: str, train_file: Path, output: Path, epochs: float, learning_rate: float, seed: int) -> None:
    """One run of the stage-2 recipe's optimiser settings on ``train_file`` alone."""
    from stance.training.config import load_config
    from stance.training.trainer import train

    config = load_config(
        None,
        [
            f"model.base={base}",
            "model.attention_dropout=0.0",
            "model.lora.enabled=false",
            f"data.train=[{{path: {train_file}, name: statements_train}}]",
            f"training.output_dir={output}",
            f"training.epochs={epochs}",
            f"training.learning_rate={learning_rate}",
            f"training.seed={seed}",
            *QUICK_RUN,
        ],
    )
    train(config)


def plot(results: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = results["runs"]
    fig, ax = plt.subplots(figsize=(5.6, 4.0), dpi=120)
    for name, colour in (("statements", "tab:blue"), ("mnli_taxinli", "tab:grey")):
        ax.plot([r["pairs"] for r in runs], [r["macro_f1"][name] for r in runs], marker="o", color=colour, label=name)
    ax.set_xlabel("statement training pairs (whole premise triplets)")
    ax.set_ylabel("dev macro-F1")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"from {results['base']}, {results['epochs']} epochs on the pairs alone", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="runs/default", help="the model every run starts from (stage 1)")
    parser.add_argument("--sizes", nargs="+", type=int, default=[0, 150, 300, 600, 1200])
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--learning-rate", type=float, default=3e-5)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "statements_curve.json"))
    args = parser.parse_args(argv)
    results: dict = {
        "base": args.base,
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
        "command": "python benchmarks/statements_curve.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "runs": [],
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        for size in args.sizes:
            started = time.perf_counter()
            if size == 0:
                model: str | Path = args.base
                pairs = 0
            else:
                subset = scratch / f"statements-{size}.jsonl"
                pairs = triplet_subset(size, args.seed, subset)
                model = scratch / f"run-{size}"
                fine_tune(args.base, subset, model, args.epochs, args.learning_rate, args.seed)
            run = {"pairs": pairs, "macro_f1": evaluate(model), "seconds": round(time.perf_counter() - started, 1)}
            results["runs"].append(run)
            print(f"{pairs:>5} pairs: {run['macro_f1']}  ({run['seconds']} s)", flush=True)
            output.write_text(json.dumps(results, indent=2) + "\n")
    figure = plot(results, output.with_suffix(".png"))
    print("\n| statement pairs | statements dev macro-F1 | MNLI dev macro-F1 |\n|---:|---:|---:|")
    for run in results["runs"]:
        print(f"| {run['pairs']} | {run['macro_f1']['statements']:.3f} | {run['macro_f1']['mnli_taxinli']:.3f} |")
    print(f"\nwrote {output} and {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
