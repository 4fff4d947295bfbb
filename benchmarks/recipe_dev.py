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
import hashlib
import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def rows_digest(data) -> str:
    """SHA-256 of a dev set's rows in order (premise, hypothesis, label): the rows a score is on."""
    digest = hashlib.sha256()
    for row in zip(data.premises, data.hypotheses, data.labels, strict=True):
        digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()


def check_reuse(reuse: dict, config_path: str, in_mean: list[str], digests: dict[str, str]) -> None:
    """Refuse an earlier result whose scores are not on exactly these dev rows and this mean.

    A result that records its rows' digests may come from another recipe with the same dev rows
    (a later experiment reusing the default's scores); an older one, without digests, only from
    the same recipe file.
    """
    source = reuse["file"]
    if reuse.get("in_mean") != in_mean:
        raise SystemExit(f"--reuse {source}: its mean is over {reuse.get('in_mean')}, this recipe's over {in_mean}")
    if "dev_rows_sha256" not in reuse:
        if reuse["config"] != config_path:
            raise SystemExit(
                f"--reuse {source}: scored with {reuse['config']}, not {config_path}, and it records no row "
                "digests to show the dev rows are the same; score the models again"
            )
        return
    differ = sorted(name for name in digests.keys() | reuse["dev_rows_sha256"].keys()
                    if reuse["dev_rows_sha256"].get(name) != digests.get(name))  # fmt: skip
    if differ:
        raise SystemExit(
            f"--reuse {source}: its dev rows differ from {config_path}'s in {differ} (other files, samples or "
            "seeds); score the models again"
        )


def model_digest(model: str) -> str | None:
    """SHA-256 over a model directory's files that decide its outputs (None for a hub id)."""
    from stance.model.loading import model_fingerprint, resolve_model_source

    source = Path(resolve_model_source(model))
    if not source.is_dir():
        return None
    return hashlib.sha256(json.dumps(model_fingerprint(source), sort_keys=True).encode()).hexdigest()


def reused_scores(reuse: dict, model: str, digest: str | None) -> dict | None:
    """``model``'s scores in an earlier result, or None when it has none to copy (``digest``: its
    files' ``model_digest``, None when it is not a local folder).

    Found by name, or else by the digest of its files (``model/default`` after an adapter scored
    under its run folder is exported there). A model that exists here is copied only with a
    recorded digest equal to its files' digest: a name alone cannot show that ``model/default``
    is still the model that was scored under that name. A recorded model that no longer exists
    here (a deleted run folder) is copied by name, as the result recorded it.
    """
    entry = reuse["models"].get(model)
    if entry is not None:  # a copy of a copy: its reused_as named a model of an older file, not of this one
        entry = {key: value for key, value in entry.items() if key != "reused_as"}
    if digest is None:  # not here (or a hub id): the name is all there is to go by
        return None if entry is None else entry | {"reused_from": reuse["file"]}
    if entry is not None and entry.get("model_sha256") == digest:
        return entry | {"reused_from": reuse["file"]}
    for name, earlier in reuse["models"].items():
        if earlier.get("model_sha256") == digest:
            return earlier | {"reused_from": reuse["file"], "reused_as": name}
    if entry is not None:
        why = (
            "has changed since it was scored"
            if entry.get("model_sha256")
            else "was scored without a digest of its files"
        )
        raise SystemExit(f"--reuse {reuse['file']}: {model} {why}; score it in a run without --reuse")
    return None


def score_models(config_path: str, models: list[str], reuse: dict | None = None) -> dict:
    """Per model: per dev set macro-F1 (and contradict F1), and the recipe's mean.

    ``reuse``: an earlier result on the same dev rows (``dev_rows_sha256``; or, for a result
    without digests, of the same recipe file); its models are copied, not scored again, where
    ``reused_scores`` can show they are the same files (``model_sha256``, recorded since 2026-11-27).
    """
    from stance.eval.metrics import classification_metrics
    from stance.model.classifier import StanceClassifier
    from stance.training.config import load_config
    from stance.training.data import prepare_data

    config = load_config(config_path)
    prepared = prepare_data(config)
    in_mean = {dataset.display_name for dataset in config.data.dev if dataset.in_mean}
    digests = {name: rows_digest(data) for name, (data, _) in prepared.dev.items()}
    results: dict = {"config": config_path, "in_mean": sorted(in_mean), "dev_rows_sha256": digests, "models": {}}
    for model in models:
        digest = model_digest(model)  # once: it reads every weight file
        earlier = reused_scores(reuse, model, digest) if reuse is not None else None
        if earlier is not None:
            check_reuse(reuse, config_path, sorted(in_mean), digests)
            results["models"][model] = earlier
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
        results["models"][model] = {"dev": sets, "mean_macro_f1": mean, "model_sha256": digest}
        print(f"{model}  mean of {len(in_mean & set(sets))} sets  {mean:.4f}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the recipe whose dev sets are read")
    parser.add_argument("--model", nargs="+", required=True, help="model or adapter directories")
    parser.add_argument("--output", default=str(RESULTS / "recipe_dev.json"))
    parser.add_argument(
        "--reuse",
        default=None,
        help="an earlier output on the same dev rows (checked by digest): its models are copied, not scored again",
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
