"""Weight averaging ("model soups") of stage-2 runs, scored on a recipe's dev sets.

Runs fine-tuned from the same start (every stage-2 run starts from runs/default) can be
averaged weight by weight; in the literature such a soup often beats each run on held-out
data at no inference cost. This measures whether it does for the default's stage-2 runs:
each soup is scored on the dev sets of the recipe, with the mean dev macro-F1 the recipes
select checkpoints by. Arg-max labels only, so the saved temperature does not matter.

    python benchmarks/soups.py --recipe configs/default-stage2.yaml \
        --soup runs/default-stage2 \
        --soup runs/default-stage2:0.5 runs/default-stage2-6k:0.5
Each --soup is RUN[:WEIGHT] ... (weights default to equal and must sum to 1). Prints a table
and writes benchmarks/results/soups.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
COPIED = ("config.json", "stance.json", "tokenizer.json", "tokenizer_config.json")
ADAPTER = "adapter_model.safetensors"  # a LoRA adapter directory (with its head) averages as one
ADAPTER_COPIED = ("adapter_config.json",)


def parse_soup(items: list[str]) -> list[tuple[Path, float]]:
    """``RUN[:WEIGHT]`` items as (run directory, weight); equal weights when none are given."""
    runs = [Path(item.rsplit(":", 1)[0]) if ":" in item else Path(item) for item in items]
    weights = [float(item.rsplit(":", 1)[1]) if ":" in item else 1 / len(items) for item in items]
    for run in runs:
        if not (run / "model.safetensors").exists() and not (run / ADAPTER).exists():
            raise SystemExit(
                f"--soup: {run} has neither model.safetensors nor {ADAPTER} (expected a training run, a checkpoint "
                "or an adapter directory)"
            )
    if abs(sum(weights) - 1) > 1e-6:
        raise SystemExit(f"--soup {' '.join(items)}: weights must sum to 1, got {sum(weights):.4f}")
    return list(zip(runs, weights, strict=True))


def average_weights(ingredients: list[tuple[Path, float]], target: Path) -> Path:
    """Write the weighted average of the runs' weights (with the first run's config,
    tokenizer and metadata) to ``target``; a single run is returned as it is.

    Adapter directories average their adapter and head tensors, and the result is again an
    adapter (13 MB, loadable like the default). For adapters continued from one another the
    LoRA factors stay close, so averaging A and B separately is near averaging their product;
    the soup is scored as saved, so the figures include whatever that approximation costs.
    ``stance.json`` records the ingredients (name, SHA-256 of the weights, weight).
    """
    from safetensors.torch import load_file, save_file

    from stance.model.loading import model_fingerprint

    if len(ingredients) == 1:
        return ingredients[0][0]
    adapters = all((run / ADAPTER).exists() for run, _ in ingredients)
    weights_file, copied = (ADAPTER, ADAPTER_COPIED) if adapters else ("model.safetensors", COPIED)
    states = [(load_file(str(run / weights_file)), weight) for run, weight in ingredients]
    names = set(states[0][0])
    for (run, _), (state, _) in zip(ingredients, states, strict=True):
        if set(state) != names:
            raise SystemExit(f"{run}: its tensors differ from {ingredients[0][0]}'s; only runs of one model average")
    averaged = {name: sum(weight * state[name].float() for state, weight in states).contiguous() for name in names}
    target.mkdir(parents=True, exist_ok=True)
    save_file(averaged, str(target / weights_file), metadata={"format": "pt"})
    for name in copied:
        shutil.copy(ingredients[0][0] / name, target / name)
    metadata = json.loads((ingredients[0][0] / "stance.json").read_text(encoding="utf-8"))
    metadata.setdefault("training", {})["averaged_from"] = [
        {"model": str(run), "sha256": model_fingerprint(run, [weights_file]), "weight": weight}
        for run, weight in ingredients
    ]
    (target / "stance.json").write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return target


def score_dev_sets(model: Path, dev_sets: dict) -> dict[str, float]:
    """Macro-F1 per dev set and their mean, as training selects checkpoints."""
    from stance.eval.metrics import classification_metrics
    from stance.model import StanceClassifier
    from stance.model.labels import LABELS

    classifier = StanceClassifier.from_pretrained(model, device="cpu")
    scores = {}
    for name, data in dev_sets.items():
        labels = classifier.predict(data.premises, data.hypotheses, batch_size=64, long_text="truncate").labels
        scores[name] = classification_metrics(data.labels, [LABELS.index(label) for label in labels])["macro_f1"]
    scores["mean"] = float(np.mean(list(scores.values())))
    return scores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=str(REPO / "configs" / "default-stage2.yaml"))
    parser.add_argument("--soup", nargs="+", action="append", required=True, metavar="RUN[:WEIGHT]")
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "soups.json"))
    parser.add_argument(
        "--save", default=None, help="keep the soups here (soup-1, soup-2, ...) instead of discarding them"
    )
    parser.add_argument("--no-score", action="store_true", help="only build the soups (with --save)")
    args = parser.parse_args()
    if args.no_score and not args.save:
        parser.error("--no-score needs --save (the soups would be built and thrown away)")
    from stance.training.config import load_config
    from stance.training.data import load_datasets

    soups = [parse_soup(items) for items in args.soup]
    config = load_config(args.recipe)
    dev_sets = {spec.display_name: load_datasets((spec,), seed=config.training.seed)[0] for spec in config.data.dev}
    results = []
    for number, ingredients in enumerate(soups, 1):
        started = time.perf_counter()
        if args.save:
            soup = average_weights(ingredients, Path(args.save) / f"soup-{number}")
            print(f"saved {soup}", flush=True)
            if args.no_score:
                continue
            scores = score_dev_sets(soup, dev_sets)
        else:
            with tempfile.TemporaryDirectory(prefix="soup-") as folder:
                scores = score_dev_sets(average_weights(ingredients, Path(folder)), dev_sets)
        label = " + ".join(f"{weight:.2f} {run}" for run, weight in ingredients)
        results.append({"soup": label, "dev_macro_f1": {k: round(v, 4) for k, v in scores.items()},
                        "seconds": round(time.perf_counter() - started, 1)})  # fmt: skip
        print(f"{label}: mean dev {scores['mean']:.4f}", flush=True)
    if not results:
        return 0
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    record = {"recipe": args.recipe, "command": "python benchmarks/soups.py " + " ".join(sys.argv[1:]),
              "soups": results}  # fmt: skip
    output.write_text(json.dumps(record, indent=2) + "\n")
    names = list(results[0]["dev_macro_f1"])
    print("| soup | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for row in results:
        print(f"| {row['soup']} | " + " | ".join(f"{row['dev_macro_f1'][n]:.3f}" for n in names) + " |")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
