"""Dev macro-F1 at every evaluation of `stance train` runs, parsed from their logs, as JSON and a chart.

    python benchmarks/train_curves.py --run "1,000 steps=runs/gpu/h200-1/r1k.log" \
        --run "1,500 steps (default)=runs/gpu/h200-1/r3k.log" \
        --reference benchmarks/results/quality_fast.json --output benchmarks/results/default_runs.json

One panel per dev set, one line per run; ``--reference`` draws another model's dev macro-F1 from a
benchmarks/quality.py JSON as a dashed level (quality.py scores whole dev splits, while training
evaluates FNC-1 and ARC on the recipe's max_rows sample, so those two levels are approximate).
The chart is written beside the JSON with the extension .png. ``--continues NAME=STEPS`` places
a run that continued another model after that model's STEPS (its own step 300 is drawn at
STEPS + 300), so a later stage extends the curve it started from.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

EVAL_LINE = re.compile(r"eval at step (\d+)/\d+ {2}(\w+) ([0-9.]+)")
MEAN_LINE = re.compile(r"eval at step (\d+)/\d+: mean dev macro-F1 ([0-9.]+)")


def parse_log(path: Path) -> list[dict]:
    """One dict per evaluation: step, each dev set's macro-F1, and the selection mean."""
    evals: dict[int, dict] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if match := MEAN_LINE.search(line):
            evals.setdefault(int(match[1]), {"step": int(match[1])})["mean"] = float(match[2])
        elif match := EVAL_LINE.search(line):
            evals.setdefault(int(match[1]), {"step": int(match[1])})[match[2]] = float(match[3])
    if not evals:
        raise SystemExit(f"{path}: no 'eval at step' lines; is this a `stance train` log with dev sets?")
    return [evals[step] for step in sorted(evals)]


def reference_levels(path: Path) -> dict[str, float]:
    """Dev macro-F1 of the scored model in a benchmarks/quality.py JSON, by data set."""
    rows = json.loads(path.read_text(encoding="utf-8"))["rows"]
    return {r["dataset"]: r["macro_f1"] for r in rows if r["system"] == "model" and r["split"] == "dev"}


def plot(runs: list[dict], reference: dict[str, float], reference_name: str, target: Path) -> None:
    """Small multiples: one panel per dev set (and the mean), one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(dict.fromkeys(key for run in runs for e in run["evals"] for key in e if key != "step"))
    columns = 5
    rows = math.ceil(len(sets) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    for axis, name in zip(axes.flat, sets, strict=False):
        for index, run in enumerate(runs):
            points = [(e["step"], e[name]) for e in run["evals"] if name in e]
            if points:  # one colour per run in every panel, also where an earlier run has no such set
                axis.plot(*zip(*points, strict=True), marker="o", color=f"C{index}", label=run["run"])
        if name in reference:
            axis.axhline(reference[name], linestyle="--", color="grey", label=reference_name)
        axis.set_title(name, fontsize=10)
        axis.set_xlabel("step", fontsize=8)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(sets) :]:
        axis.axis("off")
    axes.flat[0].set_ylabel("dev macro-F1")
    legend = {}
    for axis in axes.flat:  # every run's entry, wherever it was drawn
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    columns_of_legend = min(len(legend), 4)
    figure.legend(list(legend.values()), list(legend), loc="upper center", ncol=columns_of_legend, fontsize=9)
    legend_rows = math.ceil(len(legend) / columns_of_legend)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.035 * legend_rows))  # room for the legend above the panels
    figure.savefig(target, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    """Parse the logs, print a Markdown table of the last evaluation of each run, write JSON and PNG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, metavar="NAME=LOG", help="a run's name and log")
    parser.add_argument(
        "--continues",
        action="append",
        default=[],
        metavar="NAME=STEPS",
        help="run NAME continued a model trained for STEPS steps: its steps are drawn after those",
    )
    parser.add_argument("--reference", type=Path, help="a benchmarks/quality.py JSON drawn as dashed levels")
    parser.add_argument("--reference-name", default="fast (MiniLM)", help="legend name of --reference")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/train_curves.json"))
    args = parser.parse_args(argv)
    offsets = {}
    for spec in args.continues:
        name, sep, steps = spec.rpartition("=")
        if not sep or not name or not steps.isdigit():
            parser.error(f"--continues {spec!r}: expected NAME=STEPS, e.g. 'stage 3=3600'")
        offsets[name] = int(steps)
    runs = []
    for spec in args.run:
        name, sep, log = spec.partition("=")
        if not sep or not name or not log:
            parser.error(f"--run {spec!r}: expected NAME=LOG")
        evals = parse_log(Path(log))
        for evaluation in evals:
            evaluation["step"] += offsets.get(name, 0)
        runs.append(
            {"run": name, "log": log, "evals": evals} | ({"continues_after": offsets[name]} if name in offsets else {})
        )
    if unknown := set(offsets) - {run["run"] for run in runs}:
        parser.error(f"--continues names no --run: {sorted(unknown)}")
    reference = reference_levels(args.reference) if args.reference else {}
    sets = list(dict.fromkeys(key for run in runs for e in run["evals"] for key in e if key != "step"))
    print("| run | step | " + " | ".join(sets) + " |")
    print("|---|---:|" + "---:|" * len(sets))
    for run in runs:
        last = run["evals"][-1]
        print(
            f"| {run['run']} | {last['step']} | " + " | ".join(f"{last.get(s, float('nan')):.3f}" for s in sets) + " |"
        )
    if reference:
        print(
            f"| {args.reference_name} | - | " + " | ".join(f"{reference.get(s, float('nan')):.3f}" for s in sets) + " |"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "runs": runs,
    }
    if reference:
        record["reference"] = {"name": args.reference_name, "path": str(args.reference), "dev_macro_f1": reference}
    args.output.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    plot(runs, reference, args.reference_name, args.output.with_suffix(".png"))
    print(f"wrote {args.output} and {args.output.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
