"""Is bf16 faster than fp32 on this CPU, and on one without bf16 instructions?

Times MPNet-sized linear layers (768 -> 768 and 768 -> 3072, 2,048 tokens: 64 pairs of 32
tokens) in fp32 and in bf16, each in a fresh process, with oneDNN (the library torch's CPU bf16
matrix products run on) allowed its best instructions and then capped with
``ONEDNN_MAX_CPU_ISA``: ``AVX512_CORE`` (AVX-512 without BF16) and ``AVX2``. The caps stand in for
CPUs without those instructions; they restrict oneDNN only, which is where bf16 products run. The
fp32 times do not move under the caps (fp32 products run outside oneDNN here), so a capped row
compares capped bf16 with full-speed fp32: on a real AVX2-only CPU fp32 is slower too, and the bf16
penalty smaller than the row shows, though still a penalty.
This is the measurement behind ``--backend auto`` (``model.classifier.cpu_has_bf16_instructions``).

    python benchmarks/bf16_isa.py
Prints a table and writes benchmarks/results/bf16_isa.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from throughput import machine_facts  # noqa: E402

CAPS = (None, "AVX512_CORE", "AVX2")
CHILD = """
import json, time, torch
torch.manual_seed(0)
tokens = torch.randn(2048, 768)
out = {{}}
for width in (768, 3072):
    layer = torch.nn.Linear(768, width)
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        model, x = layer.to(dtype), tokens.to(dtype)
        with torch.inference_mode():
            for _ in range(3):
                model(x)
            start = time.perf_counter()
            for _ in range({repeats}):
                model(x)
        out[f"{{name}}_{{width}}_ms"] = (time.perf_counter() - start) / {repeats} * 1e3
print(json.dumps(out))
"""


def run_capped(cap: str | None, repeats: int) -> dict:
    """Time the layers in a child process with oneDNN capped at ``cap`` (None: uncapped)."""
    env = dict(os.environ)
    env.pop("ONEDNN_MAX_CPU_ISA", None)
    if cap:
        env["ONEDNN_MAX_CPU_ISA"] = cap
    result = subprocess.run(
        [sys.executable, "-c", CHILD.format(repeats=repeats)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "bf16_isa.json"))
    args = parser.parse_args(argv)
    rows = []
    for cap in CAPS:
        timings = run_capped(cap, args.repeats)
        for width in (768, 3072):
            fp32, bf16 = timings[f"fp32_{width}_ms"], timings[f"bf16_{width}_ms"]
            rows.append({"onednn_cap": cap or "none (the CPU's best)", "layer": f"768x{width}",
                         "fp32_ms": round(fp32, 2), "bf16_ms": round(bf16, 2),
                         "bf16_speedup": round(fp32 / bf16, 2)})  # fmt: skip
    results = {"machine": machine_facts(), "tokens": 2048, "repeats": args.repeats, "rows": rows}
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print("| oneDNN instructions | layer | fp32 ms | bf16 ms | bf16 speed-up |")
    print("|---|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['onednn_cap']} | {row['layer']} | {row['fp32_ms']} | {row['bf16_ms']} | {row['bf16_speedup']} |")
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
