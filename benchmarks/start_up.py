"""One-pair start-up, interleaved: the transformers pipeline script, ``stance score`` as typed
reading the merged-weights cache, and the same command merging the adapter (STANCE_MERGED_CACHE=0).

Whole commands on a one-pair Parquet file, the three run in turn for ``--rounds`` rounds, so
that the machine's drift (these 2-core machines are noisy: the same command varies by a second)
falls on all three alike. ``throughput.py --whole-process`` runs each system's repeats back to
back instead. Reports the median wall time and the peak RSS (GNU time's %M) of each.

    python benchmarks/start_up.py --rounds 6
Writes benchmarks/results/start_up.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import PIPELINE_SCRIPT, full_model_dir, machine_facts, timed_command  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--output", default=str(RESULTS / "start_up.json"))
    args = parser.parse_args(argv)
    stance = str(Path(sys.executable).with_name("stance"))
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        source = scratch / "one.parquet"
        pd.DataFrame({"id": [0], "premise": ["The bank kept rates unchanged."],
                      "hypothesis": ["Rates did not change."]}).to_parquet(source)  # fmt: skip
        cached = os.environ | {"STANCE_MERGED_CACHE": str(scratch / "merged")}
        commands = {
            "pipeline-script": (
                [
                    sys.executable,
                    "-c",
                    PIPELINE_SCRIPT,
                    str(full_model_dir()),
                    str(source),
                    str(scratch / "p.parquet"),
                    "128",
                ],
                None,
            ),  # fmt: skip
            "stance-as-typed (reads the cache)": (
                [stance, "score", "--input", str(source), "--output", str(scratch / "c.parquet"), "--no-progress"],
                cached,
            ),  # fmt: skip
            "stance-as-typed-uncached": (
                [stance, "score", "--input", str(source), "--output", str(scratch / "u.parquet"), "--no-progress"],
                os.environ | {"STANCE_MERGED_CACHE": "0"},
            ),  # fmt: skip
        }
        first = timed_command(*commands["stance-as-typed (reads the cache)"])  # merges once and writes the cache
        timings: dict[str, list] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, (command, env) in commands.items():
                for output in scratch.glob("[cpu].parquet"):
                    output.unlink()
                timings[name].append(timed_command(command, env))
    results = {"rounds": args.rounds, "machine": machine_facts(), "command": "python benchmarks/start_up.py "
               + " ".join(argv or sys.argv[1:]), "first_run_writing_the_cache": [round(first[0], 2), round(first[1])],
               "systems": {}}  # fmt: skip
    pipeline = statistics.median(t for t, _ in timings["pipeline-script"])
    print("| command | median wall s | x pipeline script | peak RSS MB | all runs |\n|---|---:|---:|---:|---|")
    for name, runs in timings.items():
        median = statistics.median(t for t, _ in runs)
        rss = max(r for _, r in runs)
        results["systems"][name] = {"median_seconds": round(median, 2), "x_pipeline": round(pipeline / median, 2),
                                    "peak_rss_mb": round(rss), "all_seconds": [round(t, 2) for t, _ in runs]}  # fmt: skip
        print(f"| {name} | {median:.2f} | {pipeline / median:.2f} | {rss:,.0f} | {[round(t, 2) for t, _ in runs]} |")
    print(f"first run (merges, writes the cache): {first[0]:.2f} s, {first[1]:,.0f} MB")
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
