"""Scoring on Ray Data: one StanceClassifier per actor, ``map_batches`` over Parquet.

The same per-batch scoring as the local engine (``scoring.score_frame``), so columns,
labels and probabilities match it. Ray is an optional extra: ``pip install 'stance[ray]'``.

Example:
    >>> import ray
    >>> ds = ray.data.read_parquet("pairs/")                                   # doctest: +SKIP
    >>> score_dataset(ds, "runs/sick", concurrency=4, num_gpus=1).write_parquet("scored/")  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from stance.model.errors import InputDataError, StanceError


def _require_ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise StanceError("the ray engine needs Ray: pip install 'stance[ray]'") from None
    return ray


class StanceBatchScorer:
    """Callable class for ``map_batches``: loads the model once per actor, scores pandas batches."""

    def __init__(self, model: str | None, classifier_options: dict[str, Any], score_options: dict[str, Any]) -> None:
        from stance.model.classifier import StanceClassifier

        self.classifier = StanceClassifier.from_pretrained(model, **classifier_options)
        self.score_options = score_options

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        """Score one batch; returns it with the added columns (rows unchanged)."""
        from stance.model.scoring import score_frame

        scored = score_frame(self.classifier, batch.reset_index(drop=True), **self.score_options)
        # Arrow needs one type per column: truncated is bool-or-null, label/error str-or-null.
        prefix = self.score_options.get("prefix", "")
        scored[prefix + "truncated"] = scored[prefix + "truncated"].astype("boolean")
        for name in ("label", "error"):
            scored[prefix + name] = scored[prefix + name].astype("string")
        return scored


def score_dataset(
    dataset,
    model: str | None = None,
    *,
    concurrency: int = 1,
    num_gpus: float = 0,
    num_cpus: float = 1,
    batch_size: int = 1024,
    premise_column: str = "premise",
    hypothesis_column: str = "hypothesis",
    symmetric: bool = False,
    long_text: str | None = None,
    model_batch_size: int = 32,
    prefix: str = "",
    abstain_threshold: float | None = None,
    **classifier_options: Any,
):
    """Add stance columns to a ``ray.data.Dataset`` (lazy; returns a new Dataset).

    Args:
        concurrency: actors, each holding one model (one per GPU on a GPU cluster).
        num_gpus: GPUs per actor (e.g. 1; 0.5 packs two actors on one GPU).
        num_cpus: CPUs reserved per actor; the cluster needs concurrency x num_cpus plus
            one more for reading and writing, or the pipeline waits forever.
        batch_size: rows handed to an actor at a time (Ray's batch); the model itself
            batches ``model_batch_size`` pairs per forward pass inside it.
        abstain_threshold: as in ``StanceClassifier.predict``.
        classifier_options: passed to ``StanceClassifier.from_pretrained`` (device, backend...).
    """
    _require_ray()
    if num_gpus and "device" not in classifier_options:
        classifier_options["device"] = "cuda"
    score_options = {
        "premise_column": premise_column,
        "hypothesis_column": hypothesis_column,
        "batch_size": model_batch_size,
        "symmetric": symmetric,
        "long_text": long_text,
        "prefix": prefix,
        "abstain_threshold": abstain_threshold,
    }
    return dataset.map_batches(
        StanceBatchScorer,
        fn_constructor_kwargs={
            "model": model,
            "classifier_options": classifier_options,
            "score_options": score_options,
        },
        batch_format="pandas",
        batch_size=batch_size,
        concurrency=concurrency,
        num_gpus=num_gpus,
        num_cpus=num_cpus,
    )


def resolve_parquet_inputs(input_path: str) -> list[str]:
    """A directory, a glob or one file -> the sorted Parquet files to read."""
    if os.path.isdir(input_path):
        files = sorted(glob.glob(os.path.join(input_path, "**", "*.parquet"), recursive=True))
    else:
        files = sorted(glob.glob(input_path))
    if not files:
        raise InputDataError(
            f"{input_path}: no Parquet files found (give a directory, a glob such as 'data/*.parquet', or a file)"
        )
    return files


def score_parquet(input_path: str, output_dir: str, model: str | None = None, **options: Any) -> str:
    """Read Parquet (directory, glob or file), score on Ray, write Parquet files to ``output_dir``.

    Starts a local Ray instance bound to 127.0.0.1 when none is running (set RAY_ADDRESS
    to use a cluster), and keeps row order (``preserve_order``) so output matches input.
    """
    ray = _require_ray()
    files = resolve_parquet_inputs(input_path)
    target = Path(output_dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        what = "a file" if not target.is_dir() else f"a directory with {sum(1 for _ in target.iterdir())} entries"
        raise InputDataError(
            f"{target}: already exists ({what}); Ray writes a directory of Parquet files and would mix them with "
            f"what is there. Choose a new --output directory, or remove this one"
        )
    # Ray writes into a staging directory renamed at the end: a failed run leaves no
    # directory under the final name, and a rerun never appends to an earlier one.
    staging = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    started_here = not ray.is_initialized()
    if started_here:
        # Actors hold their CPUs for the whole run: leave one for reading and writing.
        actors_cpus = options.get("concurrency", 1) * options.get("num_cpus", 1)
        init_local_ray(num_cpus=max(os.cpu_count() or 1, int(actors_cpus) + 1))
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        score_dataset(ray.data.read_parquet(files), model, **options).write_parquet(str(staging))
        if target.exists():
            target.rmdir()  # empty, checked above
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if started_here:
            ray.shutdown()
    return output_dir


def init_local_ray(num_cpus: int | None = None) -> None:
    """Start Ray on this machine only: loopback address, no dashboard, no usage reporting."""
    ray = _require_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"])
        return
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        configure_logging=False,
    )
