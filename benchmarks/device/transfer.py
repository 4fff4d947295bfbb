"""Get a training run onto the lent GPU machine, whose calls carry at most 64 MiB each.

The default's base (all-mpnet-base-v2, 438 MB fp32) and the FNC-1 training file (114 MB) do not fit,
so this packs them smaller, in three folders sent by three back-to-back `run` calls (the machine keeps
what a call copies into /tmp while it stays warm, 30 s):

    python benchmarks/device/transfer.py pack --base <all-mpnet-base-v2 folder> --data ../shared/data
    # run 1: carry .dp1, command: mkdir -p /tmp/p && cp .dp1/part_a /tmp/p/
    # run 2: carry .dp2, command: mkdir -p /tmp/p && cp .dp2/part_b /tmp/p/
    # run 3: carry .dp3, command (one or more recipes at once, each a NAME then its overrides):
    #   DEADLINE=510 bash .dp3/train.sh s3600 "--set training.max_steps=3600 --set training.eval_steps=1800"
    # a run stopped at DEADLINE sends its newest checkpoint instead: finish it here with
    #   python -m stance.training.finalize_checkpoint <checkpoint> --config configs/default.yaml --set ...
    # or, for GPU timings of the default instead of training: bash .dp3/bench.sh --batch-size 128 --tile 10
(add /.dp1/ /.dp2/ /.dp3/ to .git/info/exclude; while packing, the 58 MB of tracked model files must
not travel: `git rm -r --cached model/fast model/default benchmarks/reference` and exclude them, then
`git reset` and `git add` them back afterwards.)

- ``quantize``/``dequantize``: group-wise int8 (64 columns share one fp32 scale) of every large 2-D
  weight; the rebuilt fp32 weights differ by at most 0.8% (relative Frobenius norm, per tensor) for
  all-mpnet-base-v2. An adapter trained against them scored the same on the published weights
  (model/default/README.md).
- ``trim``: premises of FNC-1 and ARC cut to 1,500 characters, which a 128-token ``truncate`` model
  never reads past; other files are copied whole. Fingerprints of the trimmed files differ from
  ``../shared/data``'s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

GROUP = 64
TRIMMED_SETS = ("fnc1", "arc")
TRIM_CHARS = 1500
PART_BYTES = 59_000_000  # a part plus the ~5 MB of tracked files stays under 64 MiB
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def quantize(source: Path, target: Path) -> None:
    """Write ``source``'s large 2-D float32 tensors as int8 groups plus scales (others unchanged)."""
    import torch
    from safetensors.torch import load_file, save_file

    packed = {}
    for name, tensor in load_file(source).items():
        large = tensor.dim() == 2 and tensor.numel() > 100_000 and tensor.shape[1] % GROUP == 0
        # Position embeddings are small and their rows vary most: kept exact.
        if tensor.dtype == torch.float32 and large and "position" not in name:
            groups = tensor.reshape(tensor.shape[0], -1, GROUP)
            scale = groups.abs().amax(dim=2, keepdim=True).clamp(min=1e-12) / 127.0
            packed[name + ".q"] = torch.round(groups / scale).clamp(-127, 127).to(torch.int8).reshape(tensor.shape)
            packed[name + ".s"] = scale
        else:
            packed[name] = tensor
    save_file(packed, target)


def dequantize(source: Path, target: Path) -> None:
    """Rebuild float32 weights from :func:`quantize`'s file."""
    from safetensors.torch import load_file, save_file

    packed = load_file(source)
    weights = {}
    for name, tensor in packed.items():
        if name.endswith(".q"):
            groups = tensor.float().reshape(tensor.shape[0], -1, GROUP) * packed[name[:-2] + ".s"]
            weights[name[:-2]] = groups.reshape(tensor.shape).contiguous()
        elif not name.endswith(".s"):
            weights[name] = tensor
    save_file(weights, target, metadata={"format": "pt"})


def trim(data: Path, target: Path) -> None:
    """Copy every data set's JSONL files, FNC-1's and ARC's with premises cut to TRIM_CHARS."""
    for folder in sorted(p for p in data.iterdir() if p.is_dir()):
        (target / folder.name).mkdir(parents=True, exist_ok=True)
        for file in folder.glob("*.jsonl"):
            if folder.name not in TRIMMED_SETS:
                shutil.copy2(file, target / folder.name / file.name)
                continue
            with file.open(encoding="utf-8") as rows, (target / folder.name / file.name).open("w") as out:
                for line in rows:
                    row = json.loads(line)
                    row["premise"] = row["premise"][:TRIM_CHARS]
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")


def pack(base: Path, data: Path, scratch: Path) -> None:
    """Fill .dp1 and .dp2 (the quantized base in two parts) and .dp3 (everything else) in the repo."""
    folders = [REPO / f".dp{index}" for index in (1, 2, 3)]
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
    scratch.mkdir(parents=True, exist_ok=True)
    quantize(base / "model.safetensors", scratch / "base.q.safetensors")
    blob = (scratch / "base.q.safetensors").read_bytes()
    (folders[0] / "part_a").write_bytes(blob[:PART_BYTES])
    (folders[1] / "part_b").write_bytes(blob[PART_BYTES:])
    shutil.copytree(base, folders[2] / "basecfg", ignore=shutil.ignore_patterns("model.safetensors"))
    trim(data, scratch / "data")
    subprocess.run(["tar", "-C", str(scratch), "-cJf", str(folders[2] / "data.tar.xz"), "data"], check=True)
    # The device image has transformers 5.17 and peft: carry the versions this project pins.
    wheels = ["transformers==5.23.0", "peft==0.21.2"]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(folders[2])]
        + wheels,
        check=True,
    )
    for script in ("transfer.py", "setup.sh", "train.sh", "bench.sh"):
        shutil.copy2(HERE / script, folders[2] / script)
    # bench.sh times the embedded default: its adapter travels here, since model/ must not.
    shutil.copytree(
        REPO / "model" / "default", folders[2] / "default", ignore=shutil.ignore_patterns("onnx", "README.md")
    )
    for folder in folders:
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        print(f"{folder.name}: {size / 2**20:.1f} MiB")


def main(argv: list[str] | None = None) -> int:
    """Command line: pack | quantize SRC DST | dequantize SRC DST | trim DATA TARGET."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("pack", help="fill .dp1/.dp2/.dp3 for three device calls")
    packing.add_argument("--base", type=Path, required=True, help="folder of all-mpnet-base-v2")
    packing.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    packing.add_argument("--scratch", type=Path, default=Path("/tmp/stance-device-pack"))
    for name in ("quantize", "dequantize", "trim"):
        sub = commands.add_parser(name)
        sub.add_argument("source", type=Path)
        sub.add_argument("target", type=Path)
    args = parser.parse_args(argv)
    if args.command == "pack":
        pack(args.base, args.data, args.scratch)
    else:
        {"quantize": quantize, "dequantize": dequantize, "trim": trim}[args.command](args.source, args.target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
