"""Save one checkpoint of a training run as a complete model directory.

A run keeps its best checkpoint by the recipe's rule (``load_best_model_at_end``). When a
different checkpoint is chosen afterwards, for a documented reason, or when the run was stopped
after its last checkpoint but before it saved the model (a device call cut off), this writes the
checkpoint the way ``stance train`` writes the best one: ``stance.json`` (recipe, data
fingerprints, versions), that checkpoint's dev metrics from the run's log, and a temperature fitted
on the recipe's dev sets. A LoRA checkpoint also gets the run's ``adapter/`` folder (adapter, head
and stance.json), which ``stance.training.export_default`` ships.

    python -m stance.training.finalize_checkpoint runs/X/checkpoints/checkpoint-N --run runs/X \
        --config configs/x.yaml --output runs/X-final
    # a run that never saved: no --run; --set gives the overrides it was trained with
    python -m stance.training.finalize_checkpoint runs/X/checkpoints/checkpoint-N \
        --config configs/x.yaml --set training.max_steps=3600 --output runs/X-final
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path


def finalize_checkpoint(checkpoint: str | Path, run: str | Path | None, config, output: str | Path) -> Path:
    """Write ``checkpoint`` as a model directory at ``output``; returns ``output``.

    ``config`` is the run's recipe: a ``StanceConfig`` or the path of its YAML file. ``run`` is the
    run directory whose ``stance.json`` is reused; None builds the record from ``config`` and the
    data as it is now, as ``stance train`` would have, except that the training time is unknown and
    the library versions are this machine's.
    """
    from stance.model import StanceClassifier
    from stance.model.errors import ConfigError
    from stance.model.loading import is_adapter_dir
    from stance.model.metadata import StanceMetadata
    from stance.training.config import load_config
    from stance.training.data import prepare_data
    from stance.training.trainer import (
        ADAPTER_DIR,
        _calibrate,
        _portable_adapter_config,
        dev_metrics_record,
        logged_evaluation,
        run_metadata,
    )

    checkpoint, output = Path(checkpoint), Path(output)
    state_file = checkpoint / "trainer_state.json"
    if not state_file.exists():
        raise ConfigError(f"{checkpoint}: no trainer_state.json; expected a checkpoint directory of a training run")
    state = json.loads(state_file.read_text(encoding="utf-8"))
    step = state["global_step"]
    logged = logged_evaluation(state["log_history"], step)
    if not any(key.startswith("eval_") for key in logged):
        raise ConfigError(f"{checkpoint}: the run's log has no evaluation at step {step}")
    if run is not None and not (Path(run) / "stance.json").exists():
        raise ConfigError(
            f"{run}: no stance.json; pass the run directory, or leave --run out for a run that never saved"
        )
    config = load_config(config) if isinstance(config, str | Path) else config
    prepared = prepare_data(config)
    if run is not None:
        metadata = StanceMetadata.load(run)  # the run's recipe, fingerprints and versions
        metadata.temperature = 1.0
        metadata.metrics = {"dev": dev_metrics_record(logged)}
    else:
        metadata = run_metadata(config, prepared.train_prints, prepared.dev, logged, seconds=None)
    metadata.metrics["checkpoint_step"] = step
    adapter = output / ADAPTER_DIR if is_adapter_dir(checkpoint) else None
    if adapter is not None:
        # A LoRA checkpoint holds PEFT's files alone: give it the run's record (its base) to load.
        adapter.mkdir(parents=True, exist_ok=True)
        for name in ("adapter_model.safetensors", "adapter_config.json"):
            shutil.copyfile(checkpoint / name, adapter / name)  # new files: modes by the umask
        _portable_adapter_config(adapter / "adapter_config.json", metadata.base_model)
        metadata.save(adapter)
    # Loaded once, to calibrate and save: a merged copy in the user's cache would only take space.
    classifier = StanceClassifier.from_pretrained(adapter or checkpoint, device="cpu", cache_merged=False)
    classifier.metadata = metadata
    _calibrate(classifier, [data for data, _ in prepared.dev.values()], config.training.eval_batch_size)
    if adapter is not None:
        metadata.save(adapter)  # after calibration, so the adapter carries the temperature
    classifier.save_pretrained(output)
    return output


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument(
        "--run", help="the run directory (its stance.json is reused); leave out for a run that never saved"
    )
    parser.add_argument("--config", required=True, help="the run's recipe (its dev sets fit the temperature)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="the run's recipe overrides"
    )
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    from stance.training.config import load_config

    config = load_config(args.config, args.overrides)
    print(f"saved {finalize_checkpoint(args.checkpoint, args.run, config, args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
