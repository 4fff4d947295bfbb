"""Seconds per training step on this CPU: fp32 against bf16 autocast (``training.bf16: true``).

    python benchmarks/train_step.py                       # the default's continuation recipe
    python benchmarks/train_step.py --config configs/default.yaml --tokens 64 128

Builds the model exactly as ``stance train`` does for the recipe (``training.trainer._build_model``:
for ``configs/default-cycle2.yaml`` the default's LoRA adapter on all-mpnet-base-v2, attention
dropout off) and times whole steps (forward, loss, backward, AdamW update) on batches of
``--batch-size`` pairs padded to each ``--tokens`` length, the two precisions alternating round by
round so the machine's drift falls on both. The first ``--warm-up`` steps of each are not counted.
Prints a table and writes ``benchmarks/results/train_step.json``. bf16 is only fast on a CPU with
AVX512-BF16 or AMX (``benchmarks/bf16_isa.py``); elsewhere stance refuses it for training.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from throughput import machine_facts  # noqa: E402


def time_steps(config_path: str, tokens: list[int], batch_size: int, rounds: int, warm_up: int) -> dict:
    """{tokens: {precision: [seconds per step, ...]}} over ``rounds`` alternating rounds."""
    import torch

    from stance.training.config import load_config
    from stance.training.trainer import _build_model

    torch.manual_seed(0)
    model, tokenizer, _ = _build_model(load_config(config_path))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    vocabulary = len(tokenizer)
    times: dict = {}
    for length in tokens:
        ids = torch.randint(5, vocabulary, (batch_size, length))
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.randint(0, 3, (batch_size,))}
        times[length] = {"fp32": [], "bf16": []}
        for round_index in range(rounds + warm_up):
            for precision in ("fp32", "bf16") if round_index % 2 == 0 else ("bf16", "fp32"):
                started = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                    loss = model(**batch).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                if round_index >= warm_up:
                    times[length][precision].append(time.perf_counter() - started)
            print(f"{length} tokens, round {round_index + 1}/{rounds + warm_up}", file=sys.stderr, flush=True)
    return times


def main() -> None:
    """Time the steps, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "configs" / "default-cycle2.yaml"))
    parser.add_argument("--tokens", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--warm-up", type=int, default=1)
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "train_step.json"))
    args = parser.parse_args()
    times = time_steps(args.config, args.tokens, args.batch_size, args.rounds, args.warm_up)
    rows = []
    print("| tokens | batch | fp32 s/step | bf16 s/step | bf16 speed-up |\n|---:|---:|---:|---:|---:|")
    for length, by_precision in times.items():
        fp32, bf16 = statistics.median(by_precision["fp32"]), statistics.median(by_precision["bf16"])
        rows.append({"tokens": length, "batch_size": args.batch_size, "fp32_s": fp32, "bf16_s": bf16,
                     "speed_up": fp32 / bf16, "all_s": by_precision})  # fmt: skip
        print(f"| {length} | {args.batch_size} | {fp32:.2f} | {bf16:.2f} | {fp32 / bf16:.2f}x |")
    result = {
        "command": "python benchmarks/train_step.py " + " ".join(sys.argv[1:]),
        "config": args.config,
        "machine": machine_facts(),
        "rounds": args.rounds,
        "warm_up": args.warm_up,
        "rows": rows,
    }
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
