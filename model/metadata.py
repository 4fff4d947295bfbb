"""``stance.json``: what a model directory needs beyond the Hugging Face files.

It records the base model, sequence length, long-text settings, calibration
temperature, and (for trained models) the resolved recipe, data fingerprints, metrics
and library versions, so that every saved model says how it was made.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stance.model.errors import ModelLoadError

METADATA_FILE = "stance.json"
FORMAT_VERSION = 1


@dataclass
class StanceMetadata:
    """Contents of ``stance.json`` (all fields JSON-serialisable).

    Attributes:
        base_model: where the weights came from (hub id or path).
        max_length: tokens per (premise, hypothesis) input, special tokens included.
        long_text: ``truncate``, ``window`` or ``evidence`` (how premises over ``max_length`` are handled).
        evidence_ranker: ``lexical`` (BM25) or ``embedding`` (MiniLM), for evidence mode.
        window_stride: tokens of overlap between consecutive premise windows.
        window_aggregation: how window scores are combined (see ``model.windows``).
        temperature: logits are divided by this before softmax (1.0 = uncalibrated).
        training: the resolved training recipe, when the model was trained here.
        data_fingerprints: file -> sha256 and row counts of the training/dev data.
        metrics: split name -> metrics dict.
        versions: library versions at save time.
    """

    base_model: str = ""
    max_length: int = 256
    long_text: str = "truncate"
    window_stride: int = 32
    window_aggregation: str = "mean"  # best of the three on FNC-1 dev (benchmarks/windows.py)
    evidence_ranker: str = "lexical"
    temperature: float = 1.0
    training: dict[str, Any] = field(default_factory=dict)
    data_fingerprints: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def trained_label_map(self) -> dict[str, str] | None:
        """The ``model.label_map`` the model was trained with (names a base head's outputs), if any."""
        return ((self.training or {}).get("model") or {}).get("label_map")

    def to_json(self) -> str:
        """Serialise with sorted keys so equal metadata gives equal bytes."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True, default=str) + "\n"

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write ``stance.json`` into ``directory`` atomically (a temporary file, then a rename)."""
        path = Path(directory, METADATA_FILE)
        staged = path.with_name(f".{METADATA_FILE}.{os.getpid()}.tmp")
        try:
            staged.write_text(self.to_json(), encoding="utf-8")
            os.replace(staged, path)
        finally:
            staged.unlink(missing_ok=True)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> StanceMetadata:
        """Read ``stance.json``; a plain HF checkpoint without one gets defaults."""
        path = Path(directory, METADATA_FILE)
        if not path.exists():
            return cls()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ModelLoadError(
                f"{path}: corrupt stance.json ({error}); restore it or delete it to use defaults"
            ) from None
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ModelLoadError(f"{path}: unknown keys {unknown}; written by a newer stance? expected {sorted(known)}")
        metadata = cls(**raw)
        metadata.validate(path)
        return metadata

    def validate(self, path: str | os.PathLike[str] = METADATA_FILE) -> None:
        """Refuse values that would give wrong or missing probabilities, naming the key."""
        import math

        def bad(key: str, expected: str) -> ModelLoadError:
            return ModelLoadError(
                f"{path}: key {key!r} must be {expected}, got {getattr(self, key)!r}; fix or delete it"
            )

        number = (int, float)
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, number):
            raise bad("temperature", "a finite number > 0")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise bad("temperature", "a finite number > 0")
        if isinstance(self.max_length, bool) or not isinstance(self.max_length, int) or self.max_length < 8:
            raise bad("max_length", "an integer >= 8")
        if self.long_text not in ("truncate", "window", "evidence"):
            raise bad("long_text", "'truncate', 'window' or 'evidence'")
        if self.evidence_ranker not in ("lexical", "embedding"):
            raise bad("evidence_ranker", "'lexical' or 'embedding'")
        if isinstance(self.window_stride, bool) or not isinstance(self.window_stride, int) or self.window_stride < 0:
            raise bad("window_stride", "an integer >= 0")


def library_versions() -> dict[str, str]:
    """Versions of the libraries that decide a model's numbers."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in ("stance", "torch", "transformers", "tokenizers", "peft", "datasets", "accelerate", "numpy"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions
