"""Score models on a recipe's own dev sets, as `stance train` evaluates them (fp32, this machine).

    python benchmarks/recipe_dev.py --config configs/default-stage3.yaml \
        --model runs/default-3600-adapter runs/default-stage3/adapter

A continued run's figures come from its last evaluation, the model it started from has none on
the same footing (it was evaluated on another machine, in bf16, or on other dev sets): this
scores each model on exactly the dev rows the recipe reads (seeded ``max_rows`` samples
included) and prints per-set macro-F1 and the mean over the sets with ``in_mean: true``, the
figure that chooses a checkpoint. Writes ``benchmarks/results/recipe_dev.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def score_models(config_path: str, models: list[str], reuse: dict | None = None) -> dict:
    """Per model: per dev set macro-F1 (and contradict F1), and the recipe's mean.

    ``reuse``: an earlier result of this same recipe; its models are copied, not scored again.
    """
    from stance.eval.metrics import classification_metrics
    from stance.model.classifier import StanceClassifier
    from stance.training.config import load_config
    from stance.training.data import prepare_data

    config = load_config(config_path)
    prepared = prepare_data(config)
    in_mean = {dataset.display_name for dataset in config.data.dev if dataset.in_mean}
    results: dict = {"config": config_path, "in_mean": sorted(in_mean), "models": {}}
    for model in models:
        if reuse is not None and model in reuse["models"]:
            if reuse["config"] != config_path or reuse.get("in_mean") != sorted(in_mean):
                raise SystemExit(f"--reuse: scored with {reuse['config']}, not {config_path}; score {model} again")
            results["models"][model] = reuse["models"][model] | {"reused_from": reuse["file"]}
            print(f"{model}  reused from {reuse['file']}", flush=True)
            continue
        classifier = StanceClassifier.from_pretrained(model, device="cpu")
        sets = {}
        for name, (data, _) in prepared.dev.items():
            predicted = classifier.predict(list(data.premises), list(data.hypotheses), batch_size=64)
            metrics = classification_metrics(data.labels, predicted.probabilities.argmax(axis=1))
            sets[name] = {
                "rows": len(data.labels),
                "macro_f1": metrics["macro_f1"],
                "f1_contradict": metrics["per_class"]["contradict"]["f1"],
            }
            print(f"{model}  {name:<22} {metrics['macro_f1']:.4f}", flush=True)
        mean = sum(sets[name]["macro_f1"] for name in sets if name in in_mean) / len(in_mean & set(sets))
        results["models"][model] = {"dev": sets, "mean_macro_f1": mean}
        print(f"{model}  mean of {len(in_mean & set(sets))} sets  {mean:.4f}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the recipe whose dev sets are read")
    parser.add_argument("--model", nargs="+", required=True, help="model or adapter directories")
    parser.add_argument("--output", default=str(RESULTS / "recipe_dev.json"))
    parser.add_argument(
        "--reuse", default=None, help="an earlier output of the same --config: its models are copied, not scored again"
    )
    args = parser.parse_args(argv)
    reuse = None
    if args.reuse:
        reuse = json.loads(Path(args.reuse).read_text(encoding="utf-8")) | {"file": args.reuse}
    results = score_models(args.config, args.model, reuse)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
