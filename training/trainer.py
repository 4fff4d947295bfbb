"""Fine-tuning with transformers ``Trainer``: the one place a recipe meets TrainingArguments.

``train(config)`` loads and validates the data, builds the model (optionally with a
LoRA adapter), trains with length-grouped batches and dynamic padding, evaluates every
dev set each epoch, keeps the best checkpoint by dev macro-F1, and saves a model
directory whose ``stance.json`` holds the resolved recipe, data fingerprints, library
versions and dev metrics. Under ``torchrun``/``accelerate launch`` only rank 0 writes.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import EarlyStoppingCallback, Trainer, set_seed
from transformers.trainer_callback import ProgressCallback

from stance.eval.metrics import classification_metrics
from stance.model.classifier import StanceClassifier
from stance.model.errors import ConfigError
from stance.model.labels import LABELS, trained_head_id2label
from stance.model.loading import (
    is_adapter_dir,
    load_hf_model,
    load_tokenizer,
    model_fingerprint,
    resolve_model_source,
)
from stance.model.metadata import StanceMetadata, library_versions
from stance.training.config import LoraConfig, StanceConfig
from stance.training.data import PairData, PreparedData, prepare_data

logger = logging.getLogger(__name__)

ADAPTER_DIR = "adapter"


class _PairDataset(torch.utils.data.Dataset):
    """Pre-tokenised pairs; the collator pads each batch to its own longest row."""

    def __init__(self, tokenizer, data: PairData, max_length: int, head_order: list[int]) -> None:
        encoded = tokenizer(data.premises, data.hypotheses, truncation="longest_first", max_length=max_length)
        # head_order[canonical label id] = the model output that stands for that label
        self.features = [
            {key: encoded[key][i] for key in encoded.keys()} | {"labels": head_order[data.labels[i]]}
            for i in range(len(data))
        ]
        # Trainer's group_by_length sampler reads the lengths from this column name.
        for feature in self.features:
            feature["length"] = len(feature["input_ids"])

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict:
        return self.features[index]


def _collator(tokenizer):
    from transformers import DataCollatorWithPadding

    pad = DataCollatorWithPadding(tokenizer)

    def collate(features: list[dict]) -> dict:
        return pad([{k: v for k, v in f.items() if k != "length"} for f in features])

    return collate


def _build_model(config: StanceConfig):
    """Build the model to train: ``(model, tokenizer, head_order)``.

    The base the saved model names is :func:`recorded_base`'s.
    """
    source = resolve_model_source(config.model.base)
    if not is_adapter_dir(Path(source)):
        return _build_model_from(config, source)
    if config.model.lora.enabled:
        return _continue_adapter(config, Path(source))
    # An adapter directory (the embedded default is one) is merged into its base and saved as a
    # plain model, so it continues training like any other checkpoint. The files may go once
    # loaded: the loaded tensors do not depend on them (a mapped file outlives its unlinking).
    with tempfile.TemporaryDirectory(prefix="stance-merged-base-", ignore_cleanup_errors=True) as merged:
        classifier = StanceClassifier.from_pretrained(
            source, device="cpu", trust_remote_code=config.model.trust_remote_code
        )
        classifier.save_pretrained(merged)
        del classifier
        model, tokenizer, head_order = _build_model_from(config, merged)
    return model, tokenizer, head_order


def adapter_shape_mismatches(adapter_config: dict, lora: LoraConfig) -> list[str]:
    """How a saved adapter's shape differs from the recipe's ``model.lora`` (empty: it matches).

    Rank, scaling and target layers define what the adapter is; dropout only acts in training,
    so the recipe's dropout is used without comparison.
    """
    differences = []
    if adapter_config.get("r") != lora.r:
        differences.append(f"r {adapter_config.get('r')} (recipe: {lora.r})")
    if adapter_config.get("lora_alpha") != lora.alpha:
        differences.append(f"alpha {adapter_config.get('lora_alpha')} (recipe: {lora.alpha})")
    saved_targets = adapter_config.get("target_modules") or []
    if sorted(saved_targets) != sorted(lora.target_modules):
        differences.append(f"target_modules {sorted(saved_targets)} (recipe: {sorted(lora.target_modules)})")
    return differences


def _continue_adapter(config: StanceConfig, adapter_dir: Path):
    """Keep training a LoRA adapter as the same adapter on the same base.

    Merging it and adding a fresh adapter would leave an adapter whose base exists nowhere but
    on this machine; continuing keeps what ships (a few MB on a base users install) and keeps
    the adapter's head naming (its recorded ``label_map``, as the loaders read it).
    """
    import json

    from peft import LoraConfig as PeftLoraConfig
    from peft import PeftModel

    metadata = StanceMetadata.load(adapter_dir)
    if not metadata.base_model:
        raise ConfigError(f"model.base {config.model.base!r}: the adapter's stance.json names no base_model")
    adapter_config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    mismatches = adapter_shape_mismatches(adapter_config, config.model.lora)
    if mismatches:
        raise ConfigError(
            f"model.base {config.model.base!r} is a LoRA adapter of another shape: {'; '.join(mismatches)}. "
            "Continuing an adapter keeps its shape: set model.lora to match it, or set model.lora.enabled: "
            "false to merge it into its base and train every weight"
        )
    base_model_config = dataclasses.replace(
        config.model,
        base=metadata.base_model,
        label_map=config.model.label_map or metadata.trained_label_map,
        lora=dataclasses.replace(config.model.lora, enabled=False),
    )
    model, tokenizer, head_order = _build_model_from(
        dataclasses.replace(config, model=base_model_config), resolve_model_source(metadata.base_model)
    )
    saved = PeftLoraConfig.from_pretrained(str(adapter_dir))
    saved.lora_dropout = config.model.lora.dropout  # dropout only acts in training: the recipe's
    model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True, config=saved)
    # PEFT appends the classification head's names to modules_to_save on every load, so without
    # this each continued cycle would save them once more (the shipped default lists them 4 times)
    for adapter_config in model.peft_config.values():
        if adapter_config.modules_to_save:
            adapter_config.modules_to_save = list(dict.fromkeys(adapter_config.modules_to_save))
    return model, tokenizer, head_order


def _build_model_from(config: StanceConfig, source: str):
    from transformers import AutoConfig

    try:
        base_config = AutoConfig.from_pretrained(source, trust_remote_code=config.model.trust_remote_code)
    except (OSError, ValueError) as error:
        raise ConfigError(f"model.base {config.model.base!r}: cannot read its config ({error})") from None
    # A base with a 3-way NLI head keeps it, its outputs named canonically in its own order (else
    # a new head, in LABELS order); loading an adapter onto that base names them the same way.
    id2label = trained_head_id2label(getattr(base_config, "id2label", None), config.model.label_map)
    label2id = {label: index for index, label in id2label.items()}
    head_order = [label2id[label] for label in LABELS]
    overrides = {"num_labels": len(LABELS), "id2label": id2label, "label2id": label2id}
    if config.model.attention_dropout is not None:
        # Attention dropout is very expensive on CPU (1.3-3.5x slower training, measured).
        overrides["attention_probs_dropout_prob"] = config.model.attention_dropout
    model = load_hf_model(
        source, trust_remote_code=config.model.trust_remote_code, ignore_mismatched_sizes=True, **overrides
    )
    tokenizer = load_tokenizer(source, trust_remote_code=config.model.trust_remote_code)
    if config.model.lora.enabled:
        from peft import LoraConfig, TaskType, get_peft_model

        lora = config.model.lora
        model = get_peft_model(
            model,
            LoraConfig(
                task_type=TaskType.SEQ_CLS,
                r=lora.r,
                lora_alpha=lora.alpha,
                lora_dropout=lora.dropout,
                target_modules=list(lora.target_modules),
            ),
        )
    return model, tokenizer, head_order


def _class_weights(data: PairData, head_order: list[int]) -> torch.Tensor:
    """Inverse-frequency weights, indexed by model output (head order)."""
    counts = np.bincount(np.asarray(data.labels), minlength=len(LABELS)).astype(np.float64)
    weights = len(data.labels) / (len(LABELS) * np.maximum(counts, 1.0))
    by_output = np.empty(len(LABELS))
    by_output[head_order] = weights
    return torch.tensor(by_output, dtype=torch.float32)


def _training_arguments(config: StanceConfig, has_dev: bool):
    """Map the recipe onto TrainingArguments (the only place this happens)."""
    from transformers import TrainingArguments

    t = config.training
    eval_strategy = t.eval_strategy if has_dev else "no"
    return TrainingArguments(
        output_dir=str(Path(t.output_dir) / "checkpoints"),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        learning_rate=t.learning_rate,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        weight_decay=t.weight_decay,
        warmup_steps=t.warmup_ratio,
        seed=t.seed,
        data_seed=t.seed,
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        eval_strategy=eval_strategy,
        eval_steps=t.eval_steps,
        save_strategy=eval_strategy if has_dev else "epoch",
        save_steps=t.eval_steps,
        save_total_limit=t.save_total_limit,
        load_best_model_at_end=has_dev,
        # Dev sets are always passed as a dict, so Trainer prefixes their names; the
        # mean over sets (added by StanceTrainer.evaluate) picks the best checkpoint.
        metric_for_best_model="mean_macro_f1" if has_dev else None,
        greater_is_better=True,
        logging_steps=t.logging_steps,
        report_to=list(t.report_to) or "none",
        dataloader_num_workers=t.dataloader_num_workers,
        bf16=bool(t.bf16)
        if t.bf16 is not None
        else not t.fp16 and torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        fp16=t.fp16,
        # Trainer takes bf16 without a bf16 GPU only as CPU training (check_precision_hardware
        # has made sure this CPU multiplies bf16)
        use_cpu=bool(t.bf16) and not torch.cuda.is_available(),
        lr_scheduler_type=t.lr_scheduler_type,
        max_grad_norm=t.max_grad_norm,
        label_smoothing_factor=t.label_smoothing,
        # transformers 5 renamed gradient_checkpointing (the old name warns on every run)
        activation_checkpointing=t.gradient_checkpointing,
        # pinned memory only helps copies to a GPU; on CPU it only warns
        dataloader_pin_memory=torch.cuda.is_available(),
        disable_tqdm=False,
        remove_unused_columns=False,
        ddp_backend=t.ddp_backend,
    )


def format_log(logs: dict, step: int, max_steps: int) -> str:
    """One readable line for a Trainer log record: numbers as numbers, not quoted strings.

    Training records read ``step 150/2072  epoch 0.14  loss 0.5060  grad_norm 4.58  lr 2.96e-05``;
    evaluation records list the mean dev macro-F1 first, then each dev set's macro-F1.
    """

    def number(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.4f}" if 1e-3 <= abs(value) < 1e4 else f"{value:.3g}"
        return str(value)

    logs = {k: v for k, v in logs.items() if k != "total_flos"}
    if any(key.startswith("eval_") for key in logs):
        scores = {k[len("eval_") : -len("_macro_f1")]: v for k, v in logs.items() if k.endswith("_macro_f1")}
        mean = scores.pop("mean", None)
        head = f"eval at step {step}/{max_steps}" + (f": mean dev macro-F1 {mean:.4f}" if mean is not None else "")
        return head + "".join(f"  {name} {value:.4f}" for name, value in scores.items())
    names = {"learning_rate": "lr"}
    fields = [f"{names.get(key, key)} {number(value)}" for key, value in logs.items() if key != "epoch"]
    epoch = f"  epoch {logs['epoch']:.2f}" if isinstance(logs.get("epoch"), (int, float)) else ""
    return f"step {step}/{max_steps}{epoch}  " + "  ".join(fields)


class _ReadableProgress(ProgressCallback):
    """transformers' progress bar, with log records printed by :func:`format_log` (v5 prints
    a dict of quoted strings: ``{'loss': '0.5257', ...}``)."""

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102 (Trainer hook)
        if state.is_world_process_zero and self.training_bar is not None and logs:
            self.training_bar.write(format_log(logs, state.global_step, state.max_steps))


def train(config: StanceConfig, prepared: PreparedData | None = None) -> Path:
    """Fine-tune per ``config`` and save the model; returns the output directory.

    The output directory holds a full model (plain Hugging Face layout + stance.json);
    with LoRA it also holds ``adapter/``: the adapter and head alone (a few MB), with its
    own stance.json, loadable by ``StanceClassifier.from_pretrained``.
    """
    check_precision_hardware(config)
    set_seed(config.training.seed)
    started = time.time()
    prepared = prepared or prepare_data(config)
    train_data, train_prints, dev_sets = prepared.train, prepared.train_prints, prepared.dev
    logger.info("training rows: %d %s", len(train_data), train_data.label_counts())

    model, tokenizer, head_order = _build_model(config)
    max_length = config.model.max_length
    if config.model.long_text == "evidence":
        # Train on what prediction will show the model: the same sentence selection.
        train_data = _with_evidence(tokenizer, train_data, max_length, config.model.evidence_ranker)
        dev_sets = {
            name: (_with_evidence(tokenizer, data, max_length, config.model.evidence_ranker), prints)
            for name, (data, prints) in dev_sets.items()
        }
    train_set = _PairDataset(tokenizer, train_data, max_length, head_order)
    eval_sets = {name: _PairDataset(tokenizer, data, max_length, head_order) for name, (data, _) in dev_sets.items()}
    has_dev = bool(eval_sets)
    args = _training_arguments(config, has_dev)

    loss_fn = None
    if config.training.class_weighted_loss:
        weights = _class_weights(train_data, head_order)

        def loss_fn(outputs, labels, num_items_in_batch=None):
            return torch.nn.functional.cross_entropy(outputs.logits.float(), labels, weight=weights.to(labels.device))

    callbacks = []
    if has_dev and config.training.early_stopping_patience:
        callbacks.append(MeanEarlyStopping(early_stopping_patience=config.training.early_stopping_patience))
    trainer = StanceTrainer(
        model=model,
        args=args,
        data_collator=_collator(tokenizer),
        train_dataset=train_set,
        eval_dataset=eval_sets if has_dev else None,
        processing_class=tokenizer,
        compute_loss_func=loss_fn,
        compute_metrics=_metrics_in_canonical_order(head_order),
        callbacks=callbacks,
        report_only={dataset.display_name for dataset in config.data.dev if not dataset.in_mean},
    )
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(_ReadableProgress())
    trainer.train(resume_from_checkpoint=config.training.resume_from_checkpoint)
    metrics = final_dev_metrics(trainer) if has_dev else {}
    output = Path(config.training.output_dir)
    if trainer.is_world_process_zero():
        dev_logits = evaluated_dev_logits(trainer, list(dev_sets), head_order) if has_dev else None
        # Under bf16/fp16 accelerate leaves the model's forward wrapped in autocast; without the
        # wrapper, calibration scores the saved (fp32) model as it will be loaded.
        trained = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
        _save(trained, tokenizer, config, train_prints, dev_sets, metrics, time.time() - started, output, dev_logits)
        if prepared.test:
            _score_test_sets(output, prepared.test, config)
        if not config.training.keep_checkpoints:
            # The run ended well and the model is saved: the optimizer checkpoints (about 3x the
            # model) are only needed to resume, so they go when the recipe says so.
            import shutil

            shutil.rmtree(output / "checkpoints", ignore_errors=True)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    return output


def _logged_name(metric: str) -> str:
    """The key under which Trainer logs ``metric_for_best_model`` (it adds ``eval_`` when absent)."""
    return metric if metric.startswith("eval_") else f"eval_{metric}"


def final_dev_metrics(trainer: Trainer) -> dict[str, float]:
    """Dev metrics of the model training ended with.

    With ``load_best_model_at_end`` that model is the best checkpoint, whose metrics the log
    already holds: evaluating every dev set again cost about 2 minutes of a 46-minute run to
    print the same numbers. Evaluates only when the log lacks them (no evaluation ran).
    """
    step = trainer.state.best_global_step
    logged = logged_evaluation(trainer.state.log_history, step) if step is not None else {}
    if _logged_name(trainer.args.metric_for_best_model) in logged:
        return logged
    return trainer.evaluate()


@dataclasses.dataclass(frozen=True)
class EvaluatedLogits:
    """Dev logits from the evaluation at ``step`` (canonical label order) and their labels."""

    step: int
    logits: np.ndarray
    labels: np.ndarray


def evaluated_dev_logits(trainer: StanceTrainer, names: list[str], head_order: list[int]) -> EvaluatedLogits | None:
    """The dev logits (canonical label order, every dev set in ``names`` order) of the model
    training ended with, as its own evaluation computed them; None when they cannot stand in
    for scoring the saved model again.

    That evaluation is the best checkpoint's (or the last step's without dev-based selection).
    It must have run in this process (a resumed run may have evaluated that checkpoint before)
    and in fp32: under bf16/fp16 autocast the logits differ from the saved model's. On a GPU
    scoring again is quick; a bf16 CPU run pays for it (about 8 minutes for the default
    recipe's 6,000 dev rows), the price of a temperature fitted on the model as it is loaded.
    """
    args = trainer.args
    if args.bf16 or args.fp16 or args.bf16_full_eval or args.fp16_full_eval:
        return None
    step = trainer.state.best_global_step if args.load_best_model_at_end else trainer.state.global_step
    if step != trainer.state.global_step and not _holds_weights(trainer.state.best_model_checkpoint, step):
        return None  # Trainer only warns when it cannot load the best checkpoint: it may not be in memory
    outputs = trainer.dev_outputs.get(step, {})
    if any(f"eval_{name}" not in outputs for name in names):
        return None
    logits = np.concatenate([outputs[f"eval_{name}"][0] for name in names])
    head_labels = np.concatenate([outputs[f"eval_{name}"][1] for name in names])
    canonical_of_output = np.argsort(head_order)
    # head_order[canonical id] is that label's output column: reorder columns to canonical ids.
    return EvaluatedLogits(step=step, logits=logits[:, head_order], labels=canonical_of_output[head_labels])


def _holds_weights(checkpoint: str | None, step: int) -> bool:
    """Whether ``checkpoint`` is step ``step``'s checkpoint and holds weights Trainer can load."""
    if checkpoint is None or not checkpoint.endswith(f"-{step}"):
        return False
    folder = Path(checkpoint)
    names = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors")
    return any((folder / name).is_file() for name in names)


def logged_evaluation(log_history: list[dict], step: int) -> dict[str, float]:
    """The ``eval_*`` metrics Trainer logged at ``step``, with the epoch there (a final
    ``evaluate()`` would say the run's end instead of where that checkpoint was taken)."""
    logged: dict[str, float] = {}
    for entry in log_history:
        if entry.get("step") == step:
            logged |= {key: value for key, value in entry.items() if key.startswith("eval_") or key == "epoch"}
    return logged


def dev_metrics_record(logged: dict[str, float]) -> dict[str, float]:
    """Logged evaluation metrics as ``stance.json`` stores them under ``metrics.dev``."""
    return {key.removeprefix("eval_"): value for key, value in logged.items()}


def check_precision_hardware(config: StanceConfig) -> None:
    """Refuse fp16/bf16 on a machine that cannot run them well (a recipe is portable, so this is
    checked when a run starts, not when the recipe is read).

    bf16 runs on a CUDA GPU with bf16 support, and in one process on a CPU that multiplies bf16
    in hardware (AVX512-BF16 or AMX): there autocast trained the default's MPNet with LoRA 1.8-2.3x
    faster than fp32 (``benchmarks/train_step.py``). Elsewhere on a CPU bf16 is emulated (2.4-4.7x
    slower than fp32 in MPNet's linear layers, ``benchmarks/bf16_isa.py``), so it is refused, as
    is bf16 under torchrun on CPUs (untested there) and on other accelerators (XPU, MPS, ...).
    """
    import os

    from stance.model.classifier import cpu_has_bf16_instructions

    t = config.training
    if t.bf16 and not (torch.cuda.is_available() and torch.cuda.is_bf16_supported()):
        accelerator = torch.accelerator.current_accelerator() if hasattr(torch, "accelerator") else None
        if torch.cuda.is_available() or accelerator is not None:
            raise ConfigError(
                f"training.bf16: true needs a CUDA GPU with bf16 support, or a CPU with bf16 instructions and no "
                f"other accelerator (this machine has {accelerator}); set it false on this machine"
            )
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ConfigError("training.bf16: true on CPUs trains in one process only; set it false under torchrun")
        if not cpu_has_bf16_instructions():
            raise ConfigError(
                "training.bf16: true needs a CUDA GPU with bf16 support or a CPU with bf16 instructions "
                "(AVX512-BF16 or AMX; without them bf16 is emulated and slower than fp32); set it false on this machine"
            )
    if t.fp16 and not torch.cuda.is_available():
        raise ConfigError("training.fp16: true needs a CUDA GPU; set it false on this machine")


def _with_evidence(tokenizer, data: PairData, max_length: int, ranker: str) -> PairData:
    """``data`` with each long premise replaced by its selected sentences (evidence mode)."""
    from dataclasses import replace

    from stance.model.evidence import select_evidence

    chosen = select_evidence(tokenizer, data.premises, data.hypotheses, max_length, ranker)
    return replace(data, premises=[evidence.text for evidence in chosen])


def _score_test_sets(output: Path, test_sets: dict, config: StanceConfig) -> None:
    """Score each test set with the saved model: metrics into stance.json, rows into
    ``predictions/<name>.jsonl`` (gold label, predicted label, probabilities)."""
    import json

    classifier = StanceClassifier.from_pretrained(output, device="cpu", cache_merged=False)  # loaded once
    folder = output / "predictions"
    folder.mkdir(exist_ok=True)
    results = {}
    for name, (data, _) in test_sets.items():
        prediction = classifier.predict(
            data.premises, data.hypotheses, batch_size=config.training.eval_batch_size, long_text=config.model.long_text
        )
        predicted = [LABELS.index(label) for label in prediction.labels]
        metrics = classification_metrics(data.labels, predicted)
        results[name] = {"macro_f1": metrics["macro_f1"], "accuracy": metrics["accuracy"], "n": metrics["n"]}
        with open(folder / f"{name}.jsonl", "w", encoding="utf-8") as handle:
            for row, label in enumerate(prediction.labels):
                probabilities = dict(zip(LABELS, map(float, prediction.probabilities[row]), strict=True))
                record = {"premise": data.premises[row], "hypothesis": data.hypotheses[row],
                          "gold": LABELS[data.labels[row]], "label": label} | {f"prob_{k}": v for k, v in probabilities.items()}  # fmt: skip
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        print(
            f"test {name}: macro-F1 {metrics['macro_f1']:.4f} (n={metrics['n']:,}); predictions in {folder}", flush=True
        )
    classifier.metadata.metrics["test"] = results
    classifier.metadata.save(output)
    if (output / ADAPTER_DIR / "stance.json").exists():
        adapter = StanceMetadata.load(output / ADAPTER_DIR)
        adapter.metrics["test"] = results
        adapter.save(output / ADAPTER_DIR)


class MeanEarlyStopping(EarlyStoppingCallback):
    """Early stopping on the mean dev macro-F1.

    Trainer evaluates the dev sets one at a time and calls ``on_evaluate`` after each, before
    ``StanceTrainer.evaluate`` has the mean: transformers' callback then found no metric,
    warned, and never stopped. Calls without the mean are skipped here, and
    ``StanceTrainer.evaluate`` calls this again once the mean is known.
    """

    def on_evaluate(self, args, state, control, metrics, **kwargs):
        """Count an evaluation without improvement; stop training after ``patience`` of them."""
        if _logged_name(args.metric_for_best_model) not in metrics:
            return
        super().on_evaluate(args, state, control, metrics, **kwargs)


class StanceTrainer(Trainer):
    """Trainer that also reports the mean macro-F1 over several dev sets (used to pick the best).

    ``report_only`` names dev sets that are evaluated and logged but left out of that mean.
    """

    def __init__(self, *args, report_only: set[str] | frozenset[str] = frozenset(), **kwargs):
        super().__init__(*args, **kwargs)
        self.report_only = frozenset(report_only)
        # step -> dev set prefix ("eval_<name>") -> (logits in head order, head label ids), rows
        # in dataset order; and the order each dev set was evaluated in (by dataset identity)
        self.dev_outputs: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        self._eval_orders: dict[int, list[int] | None] = {}

    def _get_eval_sampler(self, eval_dataset):
        """Trainer's sampler, fixed as a list of row indices: with ``group_by_length`` it
        evaluates in a length-grouped order, which :meth:`evaluation_loop` undoes."""
        sampler = super()._get_eval_sampler(eval_dataset)
        order = None if sampler is None else list(sampler)
        self._eval_orders[id(eval_dataset)] = order
        return order

    def evaluation_loop(
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ):
        """Evaluate as Trainer does, keeping each dev set's logits for calibration after training
        (scoring every dev set again there cost 8 of the 54 minutes of a CPU run)."""
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
        dataset = getattr(dataloader, "dataset", None)
        arrays = isinstance(logits, np.ndarray) and isinstance(output.label_ids, np.ndarray)
        if not arrays or self.args.world_size > 1 or dataset is None:
            # several processes shard and gather rows (their order is not kept here); unconcatenated
            # batches (eval_do_concat_batches off) are lists: scoring again after training covers both
            return output
        logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(output.label_ids)
        order = self._eval_orders.get(id(dataset)) or list(range(len(dataset)))
        if len(order) != len(logits) or len(logits) != len(dataset):
            return output
        in_dataset_order = np.empty_like(logits), np.empty_like(labels)
        in_dataset_order[0][order], in_dataset_order[1][order] = logits, labels
        self.dev_outputs.setdefault(self.state.global_step, {})[metric_key_prefix] = in_dataset_order
        return output

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Evaluate as Trainer does, adding ``<prefix>_mean_macro_f1`` when there are several dev sets."""
        results = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        excluded = {f"{metric_key_prefix}_{name}_macro_f1" for name in self.report_only}
        scores = [
            value
            for key, value in results.items()
            if key.endswith("_macro_f1") and "mean" not in key and key not in excluded
        ]
        if eval_dataset is None and scores:
            results[f"{metric_key_prefix}_mean_macro_f1"] = float(np.mean(scores))
            self.log({f"{metric_key_prefix}_mean_macro_f1": results[f"{metric_key_prefix}_mean_macro_f1"]})
            for callback in self.callback_handler.callbacks:
                if isinstance(callback, MeanEarlyStopping):
                    callback.on_evaluate(self.args, self.state, self.control, results)
        return results


def _metrics_in_canonical_order(head_order: list[int]):
    """compute_metrics for Trainer: model outputs are mapped back to canonical label ids."""
    canonical_of_output = np.argsort(head_order)

    def compute_metrics(prediction) -> dict:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        y_true = canonical_of_output[np.asarray(prediction.label_ids)]
        y_pred = canonical_of_output[np.asarray(logits).argmax(axis=1)]
        metrics = classification_metrics(y_true, y_pred)
        flat = {"macro_f1": metrics["macro_f1"], "accuracy": metrics["accuracy"]}
        flat.update({f"f1_{label}": values["f1"] for label, values in metrics["per_class"].items()})
        return flat

    return compute_metrics


def recorded_base(config: StanceConfig) -> str:
    """The base a model trained from ``config`` names in its stance.json and adapter config.

    The recipe's ``model.base``, except for a continued LoRA adapter: its own base, which the
    loaders fetch (the recipe's name points at the adapter itself, and ``default`` moves).
    """
    source = Path(resolve_model_source(config.model.base))
    if config.model.lora.enabled and is_adapter_dir(source):
        return StanceMetadata.load(source).base_model or config.model.base
    return config.model.base


def run_metadata(
    config: StanceConfig, train_prints: dict, dev_sets: dict, metrics: dict, seconds: float | None
) -> StanceMetadata:
    """What a trained model records about its run: the resolved recipe, data fingerprints, dev
    metrics (as Trainer logged them) and library versions. ``seconds`` is None when unknown.

    A run that started from an adapter directory also keeps that model's name and the SHA-256
    of its adapter weights as ``training.continued_from`` (``default`` names another model
    once the default is replaced).
    """
    dev_prints = {name: prints for _, (_, prints) in dev_sets.items() for name, prints in prints.items()}
    started_from = {}
    source = Path(resolve_model_source(config.model.base))
    if is_adapter_dir(source):
        started_from["continued_from"] = {
            "model": config.model.base,
            "sha256": model_fingerprint(source, ["adapter_model.safetensors"]),
        }
    return StanceMetadata(
        base_model=recorded_base(config),
        max_length=config.model.max_length,
        long_text=config.model.long_text,
        evidence_ranker=config.model.evidence_ranker,
        training=config.to_dict()
        | started_from
        | {
            "train_rows": sum(p["rows_used"] for p in train_prints.values()),
            "train_seconds": None if seconds is None else round(seconds, 1),
        },
        data_fingerprints={"train": train_prints, "dev": dev_prints},
        metrics={"dev": dev_metrics_record(metrics)},
        versions=library_versions(),
    )


def _save(model, tokenizer, config, train_prints, dev_sets, metrics, seconds, output: Path, dev_logits=None) -> None:
    metadata = run_metadata(config, train_prints, dev_sets, metrics, seconds)
    if config.model.lora.enabled:
        adapter_dir = output / ADAPTER_DIR
        adapter_dir.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(adapter_dir, safe_serialization=True)
        _portable_adapter_config(adapter_dir / "adapter_config.json", metadata.base_model)
        model = model.merge_and_unload()
    # Calibrate where the model trained: on a GPU run, moving the model to the CPU first made
    # scoring the dev sets take minutes (two device runs were cut off there).
    classifier = StanceClassifier(model, tokenizer, metadata, device=next(model.parameters()).device)
    if config.training.calibrate and dev_sets:
        _calibrate(classifier, [data for data, _ in dev_sets.values()], config.training.eval_batch_size, dev_logits)
    if config.model.lora.enabled:
        metadata.save(output / ADAPTER_DIR)  # after calibration, so the adapter carries the temperature
    tmp_full = output / "model.tmp"
    classifier.save_pretrained(tmp_full)
    for item in tmp_full.iterdir():
        item.replace(output / item.name)
    tmp_full.rmdir()
    logger.info("saved model to %s", output)


def _calibrate(
    classifier: StanceClassifier, dev_sets: list[PairData], batch_size: int, evaluated: EvaluatedLogits | None = None
) -> None:
    """Fit the temperature on all dev sets together and record it with the dev ECE.

    ``evaluated``: the saved model's dev logits from its evaluation in training, used instead of
    scoring the dev sets again when their labels are these dev sets' (same rows, same order).
    """
    from stance.eval.calibration import choose_temperature, softmax
    from stance.eval.metrics import expected_calibration_error

    labels = np.asarray([label for data in dev_sets for label in data.labels])
    if evaluated is not None and np.array_equal(evaluated.labels, labels):
        logits, source = evaluated.logits, f"the evaluation at step {evaluated.step}"
    else:
        premises = [p for data in dev_sets for p in data.premises]
        hypotheses = [h for data in dev_sets for h in data.hypotheses]
        logits = classifier.logits(classifier.encode(premises, hypotheses), batch_size=batch_size).astype(np.float64)
        source = "the saved model, scored again"
    choice = choose_temperature(logits, labels)
    temperature = choice["temperature"]
    classifier.metadata.temperature = temperature
    classifier.metadata.metrics["calibration"] = {
        "temperature": temperature,
        "kept": choice["kept"],
        "reason": choice["reason"],
        "dev_ece_before": expected_calibration_error(softmax(logits), labels),
        "dev_ece_after": expected_calibration_error(softmax(logits, temperature), labels),
        "dev_logits_from": source,
    }
    verdict = f"temperature {temperature:.3f} kept" if choice["kept"] else "no temperature kept (T = 1)"
    print(f"calibration: {verdict} ({choice['reason']}; dev logits from {source})", flush=True)


def _portable_adapter_config(path: Path, base: str) -> None:
    """Record the recipe's base name (e.g. the PyPI alias), not this machine's absolute path."""
    import json

    adapter_config = json.loads(path.read_text(encoding="utf-8"))
    adapter_config["base_model_name_or_path"] = base
    path.write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
