"""Where --backend auto should switch from torch-bf16 to a built fp32 ONNX export: whole commands.

``stance score`` as a user types it, on the default model, for inputs of a few sizes, with
``--backend torch`` (fp32, what auto replaces on a CPU without bf16 instructions), ``--backend
torch-bf16`` (bf16 weights: faster per pair on a CPU with bf16 instructions, but it
imports torch and transformers first), ``--backend onnx`` (the built fp32 export: starts without
them) and as typed (``auto``, which picks by ``AUTO_ONNX_MAX_PAIRS``). The three
run in turn for ``--rounds`` rounds so the machine's drift falls on all alike; each command is run
once untimed first (the merged-weights cache and the export are built then, as a user's first
command builds them). Reports median wall seconds, peak RSS, and the backend auto chose.

    python benchmarks/auto_backend.py --rounds 3
Writes benchmarks/results/auto_backend.json. It builds the default's fp32 export (``stance
export``) and leaves it in the cache, as a user who ran ``stance export`` has it: from then on
``--backend auto`` runs it for small inputs in this checkout (delete ``model/default/onnx/``, or
the user cache's ``onnx/``, to go back).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import load_rows, machine_facts, timed_command  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
BACKENDS = ("torch", "torch-bf16", "onnx", "auto")


def write_input(path: Path, workload: str, rows: int) -> Path:
    """The first ``rows`` pairs of a throughput.py workload as JSON Lines."""
    premises, hypotheses, _ = load_rows(workload, tile=max(1, -(-rows // 300)))
    with path.open("w", encoding="utf-8") as handle:
        for premise, hypothesis in list(zip(premises, hypotheses, strict=True))[:rows]:
            handle.write(json.dumps({"premise": premise, "hypothesis": hypothesis}) + "\n")
    return path


def command(stance: str, source: Path, target: Path, backend: str) -> list[str]:
    """``stance score`` on ``source``; ``auto`` is the command as typed (no --backend)."""
    flags = [] if backend == "auto" else ["--backend", backend]
    return [stance, "score", "--input", str(source), "--output", str(target), "--no-progress", *flags]


def chosen_backend(stance: str, source: Path, target: Path) -> str:
    """The backend ``auto`` ran, from the note it prints (no note: fp32 torch)."""
    result = subprocess.run(command(stance, source, target, "auto"), capture_output=True, text=True, check=True)
    for name in ("onnx", "torch-bf16"):
        if f"backend {name}" in result.stderr:
            return name
    return "torch"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    from stance.model.classifier import AUTO_ONNX_MAX_PAIRS, cpu_has_bf16_instructions

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--short", type=int, nargs="*", default=[1, 64, 256, 1024], help="SICK pair counts")
    parser.add_argument("--articles", type=int, nargs="*", default=[16, 64, 256], help="FNC-1 article pair counts")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--output", default=str(RESULTS / "auto_backend.json"))
    args = parser.parse_args(argv)
    stance = str(Path(sys.executable).with_name("stance"))
    subprocess.run([stance, "export"], check=True)  # the default's fp32 export, as `stance export` builds it
    results: dict = {"command": "python benchmarks/auto_backend.py " + " ".join(argv or sys.argv[1:]),
                     "machine": machine_facts(), "cpu_has_bf16_instructions": cpu_has_bf16_instructions(),
                     "auto_onnx_max_pairs": AUTO_ONNX_MAX_PAIRS, "rounds": args.rounds, "inputs": []}  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        inputs = [("short", n) for n in args.short] + [("articles", n) for n in args.articles]
        sources = {key: write_input(scratch / f"{key[0]}-{key[1]}.jsonl", *key) for key in inputs}
        target = scratch / "out.jsonl"
        for source in sources.values():  # untimed first runs: caches built, files in the page cache
            for backend in args.backends:
                subprocess.run(command(stance, source, target, backend), check=True, capture_output=True)
        timings = {(key, backend): [] for key in inputs for backend in args.backends}
        for round_number in range(args.rounds):
            for key, source in sources.items():
                for backend in args.backends:
                    timings[key, backend].append(timed_command(command(stance, source, target, backend)))
            print(f"round {round_number + 1} of {args.rounds} done", file=sys.stderr, flush=True)
        print(
            "| input | pairs | " + " | ".join(f"{b} s" for b in args.backends) + " | onnx / torch-bf16 | auto chose |"
        )
        print("|---|---:|" + "---:|" * (len(args.backends) + 1) + "---|")
        for key, source in sources.items():
            row = {"workload": key[0], "pairs": key[1], "auto_chose": chosen_backend(stance, source, target)}
            for backend in args.backends:
                runs = timings[key, backend]
                row[backend] = {"median_seconds": round(statistics.median(t for t, _ in runs), 2),
                                "peak_rss_mb": round(max(r for _, r in runs)), "all_seconds": [round(t, 2) for t, _ in runs]}  # fmt: skip
            ratio = None
            if "onnx" in row and "torch-bf16" in row:
                ratio = round(row["onnx"]["median_seconds"] / row["torch-bf16"]["median_seconds"], 3)
            row["onnx_over_torch_bf16"] = ratio
            results["inputs"].append(row)
            cells = " | ".join(f"{row[b]['median_seconds']:.2f}" for b in args.backends)
            print(
                f"| {key[0]} | {key[1]:,} | {cells} | {'-' if ratio is None else f'{ratio:.2f}'} | {row['auto_chose']} |"
            )
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
