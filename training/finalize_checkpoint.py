"""Save one checkpoint of a finished run as a complete model directory.

A run keeps its best checkpoint by the recipe's rule (``load_best_model_at_end``). When a
different checkpoint is chosen afterwards, for a documented reason, this writes it the way
``stance train`` writes the best one: the run's ``stance.json`` (recipe, data fingerprints,
versions), that checkpoint's dev metrics from the run's log, and a temperature fitted on the
recipe's dev sets.

    python -m stance.training.finalize_checkpoint runs/X/checkpoints/checkpoint-N --run runs/X \
        --config configs/x.yaml --output runs/X-final
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def finalize_checkpoint(checkpoint: str | Path, run: str | Path, config, output: str | Path) -> Path:
    """Write ``checkpoint`` as a model directory at ``output``; returns ``output``.

    ``config`` is the run's recipe: a ``StanceConfig`` or the path of its YAML file.
    """
    from stance.model import StanceClassifier
    from stance.model.errors import ConfigError
    from stance.model.metadata import StanceMetadata
    from stance.training.config import load_config
    from stance.training.data import prepare_data
    from stance.training.trainer import _calibrate, dev_metrics_record, logged_evaluation

    checkpoint = Path(checkpoint)
    state_file = checkpoint / "trainer_state.json"
    if not state_file.exists():
        raise ConfigError(f"{checkpoint}: no trainer_state.json; expected a checkpoint directory of a training run")
    state = json.loads(state_file.read_text(encoding="utf-8"))
    step = state["global_step"]
    logged = logged_evaluation(state["log_history"], step)
    if not any(key.startswith("eval_") for key in logged):
        raise ConfigError(f"{checkpoint}: the run's log has no evaluation at step {step}")
    config = load_config(config) if isinstance(config, str | Path) else config
    classifier = StanceClassifier.from_pretrained(checkpoint, device="cpu")
    metadata = StanceMetadata.load(run)  # the run's recipe, fingerprints and versions
    metadata.temperature = 1.0
    metadata.metrics = {"dev": dev_metrics_record(logged), "checkpoint_step": step}
    classifier.metadata = metadata
    dev_sets = [data for data, _ in prepare_data(config).dev.values()]
    _calibrate(classifier, dev_sets, config.training.eval_batch_size)
    classifier.save_pretrained(output)
    return Path(output)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--run", required=True, help="the run directory (its stance.json is reused)")
    parser.add_argument("--config", required=True, help="the run's recipe (its dev sets fit the temperature)")
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    print(f"saved {finalize_checkpoint(args.checkpoint, args.run, args.config, args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
