"""Load, validate and mix labelled pair data for training and evaluation.

Each row is checked where it is read: an empty text or an unknown label raises an
error naming the file, the row and the column, with the expected values. Mixing
(per-label caps, row caps, weights) is seeded, so the same recipe gives the same data.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from stance.model.errors import InputDataError
from stance.model.labels import LABEL2ID, LABELS, map_source_label
from stance.model.tables import read_table, require_columns
from stance.training.config import DatasetConfig


@dataclass
class PairData:
    """Parallel lists of pairs with canonical label ids and the source of each row."""

    premises: list[str] = field(default_factory=list)
    hypotheses: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    source_labels: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def extend(self, other: PairData) -> None:
        """Append ``other``'s rows."""
        for name in ("premises", "hypotheses", "labels", "sources", "source_labels"):
            getattr(self, name).extend(getattr(other, name))

    def take(self, indices: np.ndarray) -> PairData:
        """Rows at ``indices`` (repeats allowed), as a new PairData."""
        return PairData(
            *(
                [getattr(self, n)[i] for i in indices]
                for n in ("premises", "hypotheses", "labels", "sources", "source_labels")
            )
        )

    def label_counts(self) -> dict[str, int]:
        """Rows per canonical label."""
        counts = np.bincount(np.asarray(self.labels, dtype=np.int64), minlength=len(LABELS))
        return {label: int(counts[i]) for i, label in enumerate(LABELS)}


def file_fingerprint(path: str | Path) -> str:
    """sha256 of a file's bytes (streamed), to record exactly which data trained a model."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_source(spec: DatasetConfig) -> tuple[pd.DataFrame, str]:
    if spec.path.startswith("hf:"):
        import datasets

        name = spec.path.removeprefix("hf:")
        try:
            frame = datasets.load_dataset(name, split=spec.split).to_pandas()
        except Exception as error:  # datasets raises many types for network/hub problems
            raise InputDataError(f"hub data set {name!r} (split {spec.split!r}): cannot load ({error})") from None
        return frame, f"hf:{name}[{spec.split}]"
    return read_table(spec.path), spec.path


def load_dataset_file(spec: DatasetConfig, *, seed: int = 13) -> PairData:
    """Read one data set, validate every row, map its labels, apply filter and caps (sampled
    with ``spec.sample_seed`` when it is set, else ``seed``)."""
    frame, where = _read_source(spec)
    require_columns(
        frame, {"premise": spec.premise_column, "hypothesis": spec.hypothesis_column, "label": spec.label_column}, where
    )
    for column, wanted in (spec.filter or {}).items():
        if column not in frame.columns:
            raise InputDataError(f"{where}: filter column {column!r} not found; columns are {list(frame.columns)}")
        frame = frame[frame[column] == wanted]
    if spec.source_column is not None:
        require_columns(frame, {"source": spec.source_column}, where)
    sources = frame[spec.source_column].astype(str) if spec.source_column else [spec.display_name] * len(frame)
    # The data sets here keep their original label in `source_label` (FNC-1's four-way label);
    # without one, the file's own label is the source label.
    originals = frame["source_label"] if "source_label" in frame.columns else frame[spec.label_column]
    data = PairData()
    for row_index, premise, hypothesis, raw_label, source, original in zip(
        frame.index,
        frame[spec.premise_column],
        frame[spec.hypothesis_column],
        frame[spec.label_column],
        sources,
        originals,
        strict=True,
    ):
        row = int(row_index) + 1
        for column, text in ((spec.premise_column, premise), (spec.hypothesis_column, hypothesis)):
            if not isinstance(text, str) or not text.strip():
                raise InputDataError(
                    f"{where}, row {row}, column {column!r}: empty or missing text ({text!r}); "
                    f"remove the row or fill in the text"
                )
        label = map_source_label(raw_label, spec.label_map, where=f"{where}, row {row}, column {spec.label_column!r}")
        data.premises.append(premise)
        data.hypotheses.append(hypothesis)
        data.labels.append(label)
        data.sources.append(source)
        data.source_labels.append(str(original))
    return _cap_and_weight(data, spec, seed if spec.sample_seed is None else spec.sample_seed)


def _cap_and_weight(data: PairData, spec: DatasetConfig, seed: int) -> PairData:
    rng = np.random.default_rng(seed)
    indices = np.arange(len(data))
    labels = np.asarray(data.labels, dtype=np.int64)
    if spec.label_caps:
        keep = []
        for label_index, label in enumerate(LABELS):
            rows = indices[labels == label_index]
            cap = spec.label_caps.get(label)
            if cap is not None and len(rows) > cap:
                rows = np.sort(rng.choice(rows, size=cap, replace=False))
            keep.append(rows)
        indices = np.sort(np.concatenate(keep))
    if spec.max_rows is not None and len(indices) > spec.max_rows:
        indices = np.sort(rng.choice(indices, size=spec.max_rows, replace=False))
    if "reverse_contradict" in spec.augment:
        contradict = LABEL2ID["contradict"]
        reversed_rows = data.take(indices)
        flipped = [i for i, label in enumerate(reversed_rows.labels) if label == contradict]
        reversed_rows = reversed_rows.take(np.asarray(flipped, dtype=np.int64))
        reversed_rows.premises, reversed_rows.hypotheses = reversed_rows.hypotheses, reversed_rows.premises
        # Appended rows get new positions, so weights below repeat them like any other row.
        base = len(data)
        data = data.take(np.arange(base))
        data.extend(reversed_rows)
        indices = np.concatenate([indices, np.arange(base, base + len(reversed_rows))])
    if spec.weight != 1.0:
        whole, fraction = divmod(spec.weight, 1.0)
        extra = rng.choice(indices, size=int(math.floor(fraction * len(indices))), replace=False)
        indices = np.concatenate([np.tile(indices, int(whole)), np.sort(extra)])
    return data.take(indices)


def load_datasets(specs: tuple[DatasetConfig, ...], *, seed: int = 13) -> tuple[PairData, dict[str, dict]]:
    """Load and concatenate several data sets; return the data and their fingerprints."""
    combined = PairData()
    fingerprints: dict[str, dict] = {}
    for spec in specs:
        part = load_dataset_file(spec, seed=seed)
        combined.extend(part)
        key = spec.display_name if spec.display_name not in fingerprints else spec.path
        fingerprints[key] = {
            "path": spec.path,
            "sha256": None if spec.path.startswith("hf:") else file_fingerprint(spec.path),
            "rows_used": len(part),
            "label_counts": part.label_counts(),
        }
    return combined, fingerprints


@dataclass
class PreparedData:
    """A recipe's data, loaded and validated once (before torch is imported)."""

    train: PairData
    train_prints: dict[str, dict]
    dev: dict[str, tuple[PairData, dict[str, dict]]]
    test: dict[str, tuple[PairData, dict[str, dict]]]


def prepare_data(config) -> PreparedData:
    """Load and validate every train, dev and test file of a recipe (``StanceConfig``)."""
    from stance.model.errors import ConfigError

    seed = config.training.seed
    train, prints = load_datasets(config.data.train, seed=seed)
    if len(train) == 0:
        raise ConfigError("data.train: no rows left after filters and caps")
    dev = {spec.display_name: load_datasets((spec,), seed=seed) for spec in config.data.dev}
    test = {spec.display_name: load_datasets((spec,), seed=seed) for spec in config.data.test}
    return PreparedData(train, prints, dev, test)


def data_summary(prepared: PreparedData) -> str:
    """Rows and labels per source, as a run prints it before training starts."""
    lines = ["| split | source | rows | support | contradict | neutral |", "|---|---|---:|---:|---:|---:|"]

    def add(split: str, prints: dict[str, dict]) -> None:
        for name, info in prints.items():
            counts = info["label_counts"]
            lines.append(
                f"| {split} | {name} | {info['rows_used']:,} | {counts['support']:,} | {counts['contradict']:,} "
                f"| {counts['neutral']:,} |"
            )

    add("train", prepared.train_prints)
    for split, sets in (("dev", prepared.dev), ("test", prepared.test)):
        for _, (_, prints) in sets.items():
            add(split, prints)
    counts = prepared.train.label_counts()
    lines.append(
        f"| train | **all** | {len(prepared.train):,} | {counts['support']:,} | {counts['contradict']:,} "
        f"| {counts['neutral']:,} |"
    )
    return "\n".join(lines)


def check_labels_known(data: PairData, model_labels: tuple[str, ...] = LABELS) -> None:
    """Raise if ``data`` holds a label the model cannot predict (e.g. a 2-way model)."""
    present = {LABELS[label] for label in set(data.labels)}
    missing = sorted(present - set(model_labels))
    if missing:
        raise InputDataError(f"data has label(s) {missing} that the model lacks (model labels: {list(model_labels)})")


__all__ = ["LABEL2ID", "PairData", "check_labels_known", "file_fingerprint", "load_dataset_file", "load_datasets"]
