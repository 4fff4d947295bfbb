"""Fine-tuning from a checkpoint that already has a 3-way NLI head keeps that head, by name."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from stance.model import StanceClassifier
from stance.model.labels import nli_head_order
from stance.training.config import load_config
from tests.conftest import REPO, build_tiny_model_dir


def tiny_lora_overrides(data_dir, base, output, *extra: str) -> list[str]:
    """`configs/sick.yaml` overrides for a 2-step LoRA run on the tiny model and 64 SICK rows."""
    return [
        f"model.base={base}",
        "model.lora.enabled=true",
        "model.lora.target_modules=[query, value]",
        f"data.train.0.path={data_dir / 'sick' / 'train.jsonl'}",
        "data.train.0.max_rows=64",
        f"data.dev=[{{path: {data_dir / 'sick' / 'dev.jsonl'}, name: a, max_rows: 32}}]",
        "training.max_steps=2",
        "training.batch_size=8",
        "model.max_length=32",
        f"training.output_dir={output}",
        *extra,
    ]


def test_head_order_detection():
    from transformers import BertConfig

    from stance.model.labels import trained_head_id2label

    fresh = BertConfig()  # LABEL_0, LABEL_1
    assert nli_head_order(fresh.id2label, None) is None
    assert trained_head_id2label(fresh.id2label) == {0: "support", 1: "contradict", 2: "neutral"}
    cross_encoder = BertConfig(id2label={0: "contradiction", 1: "entailment", 2: "neutral"})
    assert nli_head_order(cross_encoder.id2label, None) == [1, 0, 2]
    assert trained_head_id2label(cross_encoder.id2label) == {0: "contradict", 1: "support", 2: "neutral"}
    anonymous = BertConfig(id2label={0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    assert nli_head_order(anonymous.id2label, None) is None
    mapping = {"LABEL_0": "neutral", "LABEL_1": "support", "LABEL_2": "contradict"}
    assert nli_head_order(anonymous.id2label, mapping) == [1, 2, 0]
    assert trained_head_id2label(anonymous.id2label, mapping) == {0: "neutral", 1: "support", 2: "contradict"}


@pytest.mark.slow
def test_training_keeps_and_names_an_nli_head(tmp_path, data_dir):
    base = build_tiny_model_dir(
        tmp_path / "nli-base", id2label={0: "contradiction", 1: "entailment", 2: "neutral"}, seed=9
    )
    before = StanceClassifier.from_pretrained(base, device="cpu")
    pairs = [("a man is playing", "a man is not playing")]
    config = load_config(
        REPO / "configs" / "sick.yaml",
        [
            f"model.base={base}",
            f"data.train.0.path={data_dir / 'sick' / 'train.jsonl'}",
            "data.train.0.max_rows=64",
            f"data.dev.0.path={data_dir / 'sick' / 'dev.jsonl'}",
            "data.dev.0.max_rows=32",
            "training.max_steps=1",
            "training.learning_rate=1e-9",
            "model.max_length=64",
            f"training.output_dir={tmp_path / 'out'}",
            "training.calibrate=false",
        ],
    )
    from stance.training import trainer

    evaluations = []
    real_evaluate = trainer.StanceTrainer.evaluate

    def counted(self, eval_dataset=None, *args, **kwargs):
        if eval_dataset is None:  # a pass over all dev sets (each set is a nested call)
            evaluations.append(self.state.global_step)
        return real_evaluate(self, eval_dataset, *args, **kwargs)

    trainer.StanceTrainer.evaluate = counted
    try:
        after = StanceClassifier.from_pretrained(trainer.train(config), device="cpu")
    finally:
        trainer.StanceTrainer.evaluate = real_evaluate
    # The best checkpoint's dev metrics come from the log: no second pass over the dev sets.
    assert evaluations == [1]
    dev = json.loads((tmp_path / "out" / "stance.json").read_text())["metrics"]["dev"]
    assert dev["mean_macro_f1"] == dev["sick_macro_f1"] and 0 <= dev["mean_macro_f1"] <= 1
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert saved["id2label"] == {"0": "contradict", "1": "support", "2": "neutral"}
    # A near-zero learning rate: the trained head must still give the checkpoint's answers.
    np.testing.assert_allclose(after.predict(pairs).probabilities, before.predict(pairs).probabilities, atol=1e-4)


@pytest.mark.slow
def test_evidence_mode_training_tests_and_checkpoint_cleanup(tmp_path, data_dir, tiny_model_dir, capsys):
    """long_text: evidence selects sentences of the training premises (as prediction does);
    data.test is scored after training; keep_checkpoints: false removes checkpoints/; the
    training log prints numbers, not transformers 5's quoted strings."""
    config = load_config(
        REPO / "configs" / "sick.yaml",
        [
            f"model.base={tiny_model_dir}",
            "model.long_text=evidence",
            "data.train.0.name=fnc1",
            f"data.train.0.path={data_dir / 'fnc1' / 'dev.jsonl'}",
            "data.train.0.max_rows=24",
            f"data.dev.0.path={data_dir / 'sick' / 'dev.jsonl'}",
            "data.dev.0.max_rows=16",
            f"data.test=[{{path: {data_dir / 'sick' / 'test.jsonl'}, name: sick_test, max_rows: 20}}]",
            "training.max_steps=2",
            "model.max_length=64",
            f"training.output_dir={tmp_path / 'out'}",
            "training.calibrate=false",
            "training.keep_checkpoints=false",
            "training.logging_steps=1",
        ],
    )
    from stance.training import trainer
    from stance.training.data import prepare_data

    prepared = prepare_data(config)
    seen = {}
    real = trainer._with_evidence

    def spy(tokenizer, data, max_length, ranker):
        selected = real(tokenizer, data, max_length, ranker)
        seen.setdefault("train", (data, selected))
        return selected

    trainer._with_evidence = spy
    try:
        output = trainer.train(config, prepared)
    finally:
        trainer._with_evidence = real
    original, selected = seen["train"]
    shortened = [s for o, s in zip(original.premises, selected.premises, strict=True) if s != o]
    assert shortened and all(
        len(s) < len(o) for o, s in zip(original.premises, selected.premises, strict=True) if s != o
    )
    metadata = json.loads((output / "stance.json").read_text())
    assert metadata["long_text"] == "evidence" and metadata["metrics"]["test"]["sick_test"]["n"] == 20
    assert len((output / "predictions" / "sick_test.jsonl").read_text().splitlines()) == 20
    assert not (output / "checkpoints").exists()
    printed = capsys.readouterr()
    assert re.search(r"^step 1/2  epoch [0-9.]+  loss [0-9.]+", printed.out, re.M), printed.out
    assert "'loss': '" not in printed.out + printed.err and "FutureWarning" not in printed.err


@pytest.mark.slow
def test_early_stopping_watches_the_mean_over_dev_sets(tmp_path, data_dir, tiny_model_dir, caplog):
    """With two dev sets and no improvement (learning rate ~0), patience 1 stops at the second
    evaluation. Before, transformers' callback looked for the mean before it existed, warned
    and never stopped."""
    config = load_config(
        REPO / "configs" / "sick.yaml",
        [
            f"model.base={tiny_model_dir}",
            f"data.train.0.path={data_dir / 'sick' / 'train.jsonl'}",
            "data.train.0.max_rows=64",
            f"data.dev=[{{path: {data_dir / 'sick' / 'dev.jsonl'}, name: a, max_rows: 16}}, "
            f"{{path: {data_dir / 'mnli_taxinli' / 'dev.jsonl'}, name: b, max_rows: 16}}]",
            "training.max_steps=6",
            "training.batch_size=8",
            "training.eval_strategy=steps",
            "training.eval_steps=1",
            "training.early_stopping_patience=1",
            "training.learning_rate=1e-12",
            "model.max_length=32",
            f"training.output_dir={tmp_path / 'out'}",
            "training.calibrate=false",
        ],
    )
    from stance.training import trainer

    output = trainer.train(config)
    state = json.loads(sorted((output / "checkpoints").glob("checkpoint-*/trainer_state.json"))[-1].read_text())
    assert state["global_step"] == 2, state["global_step"]
    assert "did not find" not in caplog.text


def test_log_records_read_as_numbers():
    from stance.training.trainer import format_log

    line = format_log({"loss": 0.52571, "grad_norm": 7.8712, "learning_rate": 1.176e-05, "epoch": 0.048}, 50, 2072)
    assert line == "step 50/2072  epoch 0.05  loss 0.5257  grad_norm 7.8712  lr 1.18e-05"
    evaluation = {
        "eval_statements_macro_f1": 0.44,
        "eval_sick_macro_f1": 0.8651,
        "eval_mean_macro_f1": 0.6321,
        "epoch": 1.0,
    }
    assert (
        format_log(evaluation, 400, 2072)
        == "eval at step 400/2072: mean dev macro-F1 0.6321  statements 0.4400  sick 0.8651"
    )


def test_finalize_checkpoint_saves_a_chosen_checkpoint_as_a_run_saves_its_best(tmp_path, data_dir, tiny_model_dir):
    """The default ships a checkpoint other than the one its run kept: it must come out as a
    complete model (the run's recipe, that checkpoint's logged dev metrics, a temperature)."""
    import torch
    from safetensors.torch import load_file

    from stance.model.errors import ConfigError
    from stance.model.metadata import StanceMetadata
    from stance.training import trainer
    from stance.training.finalize_checkpoint import finalize_checkpoint

    config = load_config(
        REPO / "configs" / "sick.yaml",
        [
            f"model.base={tiny_model_dir}",
            f"data.train.0.path={data_dir / 'sick' / 'train.jsonl'}",
            "data.train.0.max_rows=64",
            f"data.dev=[{{path: {data_dir / 'sick' / 'dev.jsonl'}, name: a, max_rows: 32}}]",
            "training.max_steps=4",
            "training.batch_size=8",
            "training.eval_strategy=steps",
            "training.eval_steps=2",
            "model.max_length=32",
            f"training.output_dir={tmp_path / 'out'}",
        ],
    )
    output = trainer.train(config)
    first = output / "checkpoints" / "checkpoint-2"
    state = json.loads((first / "trainer_state.json").read_text())
    logged = next(e for e in state["log_history"] if e.get("step") == 2 and "eval_a_macro_f1" in e)
    final = finalize_checkpoint(first, output, config, tmp_path / "final")
    metadata = StanceMetadata.load(final)
    assert metadata.metrics["checkpoint_step"] == 2
    assert metadata.metrics["dev"]["a_macro_f1"] == logged["eval_a_macro_f1"]
    assert metadata.training == StanceMetadata.load(output).training
    assert metadata.data_fingerprints == StanceMetadata.load(output).data_fingerprints
    assert "calibration" in metadata.metrics
    saved, chosen = load_file(str(final / "model.safetensors")), load_file(str(first / "model.safetensors"))
    name = next(k for k in chosen if k.endswith("classifier.weight"))
    assert torch.equal(saved[name], chosen[name])
    StanceClassifier.from_pretrained(final, device="cpu").predict([("a man", "a dog")])
    with pytest.raises(ConfigError, match="trainer_state.json"):
        finalize_checkpoint(tiny_model_dir, output, config, tmp_path / "nope")


def test_finalize_checkpoint_rebuilds_a_lora_run_stopped_before_it_saved(tmp_path, data_dir, tiny_model_dir):
    """A GPU call cut off after the last checkpoint leaves PEFT's files and no run record: the
    checkpoint and the recipe must give what the run would have saved, adapter/ included."""
    import shutil

    from stance.model.metadata import StanceMetadata
    from stance.training import trainer
    from stance.training.finalize_checkpoint import main

    overrides = tiny_lora_overrides(
        data_dir, tiny_model_dir, tmp_path / "out", "training.eval_strategy=steps", "training.eval_steps=2"
    )
    output = trainer.train(load_config(REPO / "configs" / "sick.yaml", overrides))
    stopped = tmp_path / "stopped" / "checkpoint-2"  # what the cut-off call sent back
    shutil.copytree(output / "checkpoints" / "checkpoint-2", stopped)
    sets = [item for override in overrides for item in ("--set", override)]
    assert (
        main([str(stopped), "--config", str(REPO / "configs" / "sick.yaml"), *sets, "--output", str(tmp_path / "f")])
        == 0
    )

    ran, final = StanceMetadata.load(output / "adapter"), StanceMetadata.load(tmp_path / "f" / "adapter")
    assert final.base_model == str(tiny_model_dir)
    assert final.data_fingerprints == ran.data_fingerprints
    assert final.metrics["dev"] == ran.metrics["dev"] and final.metrics["checkpoint_step"] == 2
    assert final.training["training"] == ran.training["training"] and final.training["train_seconds"] is None
    assert final.temperature == pytest.approx(ran.temperature)
    pairs = [("A man is playing a guitar.", "A man plays music."), ("A dog runs.", "A cat sleeps.")]
    # The tiny base has an NLI head (entailment, neutral, contradiction), which training keeps in
    # that order: its adapter must name the outputs so, like the merged model the run saved.
    merged, ran_run, rebuilt = (
        StanceClassifier.from_pretrained(folder, device="cpu").predict(pairs)
        for folder in (output, output / "adapter", tmp_path / "f" / "adapter")
    )
    for adapter in (ran_run, rebuilt):
        assert adapter.labels == merged.labels
        np.testing.assert_allclose(adapter.probabilities, merged.probabilities, atol=1e-5)


def test_report_only_dev_sets_are_logged_but_not_averaged(monkeypatch):
    """A dev set with ``in_mean: false`` keeps its own figures but does not choose the checkpoint."""
    from transformers import Trainer

    from stance.training.trainer import StanceTrainer

    logged = {"eval_sick_macro_f1": 0.8, "eval_small_macro_f1": 0.2, "eval_fnc1_macro_f1": 0.6, "eval_sick_loss": 1.0}
    monkeypatch.setattr(Trainer, "evaluate", lambda self, *args, **kwargs: dict(logged))
    stance_trainer = StanceTrainer.__new__(StanceTrainer)  # only evaluate() is under test
    stance_trainer.report_only = frozenset({"small"})
    stance_trainer.log = lambda values: None
    stance_trainer.callback_handler = type("Handler", (), {"callbacks": []})()
    results = stance_trainer.evaluate()
    assert results["eval_mean_macro_f1"] == pytest.approx(0.7)
    assert results["eval_small_macro_f1"] == 0.2
    stance_trainer.report_only = frozenset()
    assert stance_trainer.evaluate()["eval_mean_macro_f1"] == pytest.approx(1.6 / 3)


def test_training_continues_a_lora_adapter_as_the_same_adapter_on_its_base(tmp_path, data_dir, tiny_model_dir):
    """`model.base: <adapter>` with LoRA on keeps training that adapter: the result is again a small
    adapter on the original base (loadable where that base is), not one on a merged model that
    exists only on the training machine; the run records what it started from."""
    import torch
    from safetensors.torch import load_file

    from stance.model.errors import ConfigError
    from stance.model.metadata import StanceMetadata
    from stance.training import trainer

    def recipe(base, output, *extra):
        return load_config(
            REPO / "configs" / "sick.yaml",
            tiny_lora_overrides(
                data_dir,
                base,
                output,
                "model.lora.r=4",
                "model.lora.alpha=8",
                "training.learning_rate=0.05",
                "training.eval_strategy='no'",
                "training.early_stopping_patience=null",
                *extra,
            ),
        )

    first = trainer.train(recipe(tiny_model_dir, tmp_path / "first")) / "adapter"
    pairs = [("A man is playing a guitar.", "A man plays music."), ("A dog runs.", "A cat sleeps.")]

    continued = recipe(first, tmp_path / "unused")
    model, tokenizer, _ = trainer._build_model(continued)
    assert trainer.recorded_base(continued) == str(tiny_model_dir), "the base recorded is the adapter's own"
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert trainable and all("lora_" in name or "classifier" in name for name in trainable)
    batch = tokenizer([p for p, _ in pairs], [h for _, h in pairs], return_tensors="pt", padding=True)
    reference = StanceClassifier.from_pretrained(first, device="cpu")
    with torch.no_grad():
        np.testing.assert_allclose(
            model.eval()(**batch).logits.numpy(), reference.model(**batch).logits.numpy(), atol=1e-5
        )

    second = trainer.train(recipe(first, tmp_path / "second")) / "adapter"
    adapter_config = json.loads((second / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == str(tiny_model_dir) and adapter_config["r"] == 4
    modules_to_save = adapter_config["modules_to_save"]
    assert sorted(modules_to_save) == sorted(set(modules_to_save)), "each head module once, however many cycles"
    metadata = StanceMetadata.load(second)
    assert metadata.base_model == str(tiny_model_dir)
    started = metadata.training["continued_from"]
    assert started["model"] == str(first) and len(started["sha256"]["adapter_model.safetensors"]) == 64
    before, after = load_file(first / "adapter_model.safetensors"), load_file(second / "adapter_model.safetensors")
    assert before.keys() == after.keys(), "the same adapter, with the same tensors"
    assert any(not torch.equal(before[name], after[name]) for name in before), "and it trained"
    merged = StanceClassifier.from_pretrained(second.parent, device="cpu").predict(pairs)
    loaded = StanceClassifier.from_pretrained(second, device="cpu").predict(pairs)
    np.testing.assert_allclose(loaded.probabilities, merged.probabilities, atol=1e-5)

    with pytest.raises(ConfigError, match=r"LoRA adapter of another shape: r 4 \(recipe: 8\).*lora.enabled: false"):
        trainer._build_model(recipe(first, tmp_path / "unused", "model.lora.r=8"))


@pytest.mark.slow
@pytest.mark.parametrize("lora", [False, True])
def test_calibration_reuses_the_saved_models_own_dev_evaluation(tmp_path, data_dir, monkeypatch, lora):
    """After training, the temperature is fitted on the logits the chosen evaluation computed, in
    canonical label order (this base's head is contradiction, entailment, neutral), not by scoring
    every dev set again; they must be the saved model's logits (with LoRA: the merged model's)."""
    from stance.training import trainer
    from stance.training.data import prepare_data

    base = build_tiny_model_dir(
        tmp_path / "nli-base", id2label={0: "contradiction", 1: "entailment", 2: "neutral"}, seed=5
    )
    overrides = tiny_lora_overrides(data_dir, base, tmp_path / "out", f"model.lora.enabled={str(lora).lower()}")
    overrides.append(
        f"data.dev=[{{path: {data_dir / 'sick' / 'dev.jsonl'}, name: a, max_rows: 24}},"
        f" {{path: {data_dir / 'negation_nli' / 'dev.jsonl'}, name: b, max_rows: 20}}]"
    )
    config = load_config(REPO / "configs" / "sick.yaml", overrides)
    handed = []
    fit = trainer._calibrate
    monkeypatch.setattr(trainer, "_calibrate", lambda *args: handed.append(args[3]) or fit(*args))
    output = trainer.train(config)
    evaluated = handed[0]
    assert evaluated is not None and evaluated.step == 2
    assert StanceMetadata_from(output)["dev_logits_from"] == "the evaluation at step 2"
    saved = StanceClassifier.from_pretrained(output, device="cpu")
    saved.metadata.temperature = 1.0
    dev = [data for data, _ in prepare_data(config).dev.values()]
    premises = [p for data in dev for p in data.premises]
    hypotheses = [h for data in dev for h in data.hypotheses]
    assert evaluated.labels.tolist() == [label for data in dev for label in data.labels]
    rescored = saved.logits(saved.encode(premises, hypotheses))
    np.testing.assert_allclose(evaluated.logits, rescored, atol=1e-4)


def StanceMetadata_from(output) -> dict:
    """The calibration record a run saved in stance.json."""
    return json.loads((output / "stance.json").read_text())["metrics"]["calibration"]


def test_calibration_takes_the_logits_of_the_model_training_kept(tmp_path):
    """The best checkpoint's evaluation when Trainer could load it, the last step's without
    selection, and none when the kept model may not be the evaluated one (or ran in bf16)."""
    from types import SimpleNamespace

    from stance.training.trainer import evaluated_dev_logits

    head_order = [1, 0, 2]  # canonical support is output 1, contradict output 0, neutral output 2
    step_one = {
        "eval_a": (np.array([[0.0, 1.0, 2.0]]), np.array([1])),
        "eval_b": (np.array([[3.0, 4.0, 5.0]]), np.array([2])),
    }
    step_three = {
        "eval_a": (np.array([[9.0, 9.0, 9.0]]), np.array([1])),
        "eval_b": (np.array([[9.0, 9.0, 9.0]]), np.array([2])),
    }
    checkpoint = tmp_path / "checkpoint-1"
    checkpoint.mkdir()

    def fake(best_loaded=True, load_best=True, bf16=False, outputs=None):
        args = SimpleNamespace(
            bf16=bf16, fp16=False, bf16_full_eval=False, fp16_full_eval=False, load_best_model_at_end=load_best
        )
        state = SimpleNamespace(best_global_step=1, global_step=3, best_model_checkpoint=str(checkpoint))
        return SimpleNamespace(args=args, state=state, dev_outputs=outputs or {1: step_one, 3: step_three})

    assert evaluated_dev_logits(fake(), ["a", "b"], head_order) is None  # no weights in checkpoint-1
    (checkpoint / "model.safetensors").write_bytes(b"")
    chosen = evaluated_dev_logits(fake(), ["a", "b"], head_order)
    assert chosen.step == 1
    np.testing.assert_array_equal(chosen.logits, [[1.0, 0.0, 2.0], [4.0, 3.0, 5.0]])
    assert chosen.labels.tolist() == [0, 2]  # output 1 is support (0), output 2 neutral (2)
    assert evaluated_dev_logits(fake(load_best=False), ["a", "b"], head_order).step == 3
    assert evaluated_dev_logits(fake(bf16=True), ["a", "b"], head_order) is None
    assert evaluated_dev_logits(fake(outputs={1: {"eval_a": step_one["eval_a"]}}), ["a", "b"], head_order) is None


@pytest.mark.parametrize("lora", [True, False])
def test_bf16_training_runs_under_cpu_autocast_where_the_cpu_multiplies_bf16(
    tmp_path, data_dir, tiny_model_dir, monkeypatch, lora
):
    """``training.bf16: true`` on a CPU with bf16 instructions trains under bf16 autocast (the
    layers compute in bf16), then calibrates and saves the model in fp32, as it will be loaded;
    the same recipe is refused on a CPU without them, where bf16 is emulated and slower."""
    import torch

    from stance.model.errors import ConfigError
    from stance.training import trainer

    if torch.cuda.is_available():
        pytest.skip("on a GPU machine the run would train on the GPU")
    overrides = tiny_lora_overrides(
        data_dir, tiny_model_dir, tmp_path / "out", "training.bf16=true", f"model.lora.enabled={str(lora).lower()}"
    )
    config = load_config(REPO / "configs" / "sick.yaml", overrides)
    monkeypatch.setattr("stance.model.classifier.cpu_has_bf16_instructions", lambda: False)
    with pytest.raises(ConfigError, match="CPU with bf16 instructions"):
        trainer.train(config)

    monkeypatch.setattr("stance.model.classifier.cpu_has_bf16_instructions", lambda: True)
    dtypes: dict[str, set[torch.dtype]] = {"training": set(), "calibrating": set()}
    phase = ["training"]
    build, calibrate = trainer._build_model, trainer._calibrate

    def build_and_watch(config):
        model, tokenizer, head_order = build(config)

        def record(module, inputs, output):
            if module.training or phase[0] == "calibrating":
                dtypes[phase[0]].add(output.dtype)

        next(m for m in model.modules() if isinstance(m, torch.nn.Linear)).register_forward_hook(record)
        return model, tokenizer, head_order

    def watched_calibrate(*args):
        phase[0] = "calibrating"
        return calibrate(*args)

    monkeypatch.setattr(trainer, "_build_model", build_and_watch)
    monkeypatch.setattr(trainer, "_calibrate", watched_calibrate)
    output = trainer.train(config)
    assert dtypes == {"training": {torch.bfloat16}, "calibrating": {torch.float32}}
    saved = StanceClassifier.from_pretrained(output, device="cpu", backend="torch")
    assert {parameter.dtype for parameter in saved.model.parameters()} == {torch.float32}
    assert json.loads((output / "stance.json").read_text())["training"]["training"]["bf16"] is True, (
        "the record says how it trained"
    )
