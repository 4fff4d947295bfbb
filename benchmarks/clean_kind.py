"""One kind of a statement dev set scored twice: on all its rows and on the rows that no training
pair shares a template with (a ``benchmarks/near_templates.py`` record).

    python benchmarks/clean_kind.py --dev benchmarks/data/statements_dev.jsonl --kind swapped_actors \\
        --exclude benchmarks/results/cycle7_experiment/statements_dev_near_parts23_24.json \\
        --model model/default runs/default-cycle7/adapter \\
        --output benchmarks/results/cycle7_experiment/swapped_kind_clean.json

Why: the writers of a training part may have followed a brief written by someone who had read the
dev set, so a model trained on that part can be right on a dev row because it saw the row's template
under other names. The figure on the clean rows is the one that says whether the kind was learnt.
Each model is loaded fp32 on the CPU (``backend="torch"``), as ``decide.py`` does; the per-row
predictions are kept so that a reader can see which rows moved.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from near_templates import read_rows  # noqa: E402  (the script that makes the records reads rows the same way)


def kind_rows(dev: Path, kind: str, exclude: Path) -> tuple[list[dict], set[str]]:
    """The rows of ``kind`` in ``dev`` and the ids among them that ``exclude`` flags.

    Raises ``SystemExit`` when the kind has no rows or the record was made for another dev file,
    so a typo cannot produce an empty or mismatched figure.
    """
    rows = [row for row in read_rows(dev) if row.get("kind") == kind]
    if not rows:
        kinds = sorted({row.get("kind", "?") for row in read_rows(dev)})
        raise SystemExit(f"{dev}: no rows of kind {kind!r}; its kinds are {', '.join(kinds)}")
    record = json.loads(exclude.read_text(encoding="utf-8"))
    recorded = Path(record["dev"]) if Path(record["dev"]).is_absolute() else REPO / record["dev"]
    if recorded.resolve() != dev.resolve():
        raise SystemExit(f"{exclude} was made for {record['dev']}, not {dev}: run near_templates.py on {dev}")
    flagged_groups = set(record["flagged"])
    flagged = {row["id"] for row in rows if row.get("group", row["id"]) in flagged_groups}
    return rows, flagged


def score(predicted: list[str], rows: list[dict], flagged: set[str]) -> dict:
    """Accuracy on all rows and on the rows not flagged, with each row's label and prediction."""
    right = [guess == row["label"] for guess, row in zip(predicted, rows, strict=True)]
    clean = [ok for ok, row in zip(right, rows, strict=True) if row["id"] not in flagged]
    return {
        "all": {"right": sum(right), "n": len(right), "accuracy": round(sum(right) / len(right), 4)},
        "clean": {
            "right": sum(clean),
            "n": len(clean),
            "accuracy": round(sum(clean) / len(clean), 4) if clean else None,
        },
        "rows": [
            {"id": row["id"], "label": row["label"], "predicted": guess, "flagged": row["id"] in flagged}
            for guess, row in zip(predicted, rows, strict=True)
        ],
    }


def predict(model: str, rows: list[dict]) -> list[str]:
    """The model's labels (fp32, CPU) for ``rows``."""
    from stance.model import StanceClassifier

    classifier = StanceClassifier.from_pretrained(model, device="cpu", backend="torch")
    return list(classifier.predict([row["premise"] for row in rows], [row["hypothesis"] for row in rows]).labels)


def main(argv: list[str] | None = None) -> int:
    """Score each ``--model`` on the kind's rows and write the JSON record; prints a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dev", type=Path, required=True, help="a statement dev set with a 'kind' field")
    parser.add_argument("--kind", required=True, help="the kind to score, e.g. swapped_actors")
    parser.add_argument("--exclude", type=Path, required=True, help="a benchmarks/near_templates.py record for --dev")
    parser.add_argument("--model", nargs="+", required=True, help="model folders or names, each scored")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    rows, flagged = kind_rows(args.dev, args.kind, args.exclude)
    record = {
        "dev": str(args.dev),
        "kind": args.kind,
        "exclude": str(args.exclude),
        "flagged": sorted(flagged),
        "command": "python benchmarks/clean_kind.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "models": {},
    }
    print(f"| model | {args.kind}, all {len(rows)} | clean {len(rows) - len(flagged)} |\n|---|---:|---:|")
    for model in args.model:
        result = score(predict(model, rows), rows, flagged)
        record["models"][model] = result
        print(
            f"| {model} | {result['all']['right']} of {result['all']['n']} | {result['clean']['right']} of {result['clean']['n']} |"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
