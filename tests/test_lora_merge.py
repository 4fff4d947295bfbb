"""The peft-free LoRA merge (stance.model.lora) gives peft's weights, and leaves anything it
does not understand to peft."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from stance.model import StanceClassifier
from stance.model.lora import lora_scale, merge_lora_in_place
from tests.conftest import build_tiny_adapter_dir
from tests.test_classifier import PAIRS

ALL_LINEAR = ["query", "key", "value", "dense"]


def peft_merged(base_dir, adapter):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    base = AutoModelForSequenceClassification.from_pretrained(base_dir)
    return PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"target_modules": ALL_LINEAR, "r": 8, "lora_alpha": 4},
        {"target_modules": ALL_LINEAR, "r": 3, "lora_alpha": 8},  # scale 8/3: rounding order shows
        {"target_modules": ALL_LINEAR, "use_rslora": True},
    ],
    ids=["query-value", "all-linear", "odd-scale", "rslora"],
)
def test_the_merge_gives_peft_weights(tmp_path, tiny_model_dir, options):
    from transformers import AutoModelForSequenceClassification

    adapter = build_tiny_adapter_dir(tmp_path, tiny_model_dir, **options)
    ours = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
    before = {name: value.clone() for name, value in ours.state_dict().items()}
    assert merge_lora_in_place(ours, adapter)
    reference = peft_merged(tiny_model_dir, adapter).state_dict()
    assert set(ours.state_dict()) == set(reference)
    changed = 0
    for name, value in ours.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), reference[name].numpy(), err_msg=name)  # bit for bit
        changed += not bool((value == before[name]).all())
    targets = len(options.get("target_modules", ["query", "value"]))
    assert changed >= 2 * targets + 2, "every target layer and the head changed"


def test_a_loaded_adapter_scores_as_peft_merges_it_and_never_imports_peft(tmp_path, tiny_model_dir):
    adapter = build_tiny_adapter_dir(tmp_path, tiny_model_dir, target_modules=ALL_LINEAR)
    loaded = StanceClassifier.from_pretrained(adapter, device="cpu")
    merged = peft_merged(tiny_model_dir, adapter)
    merged.config.id2label = loaded.model.config.id2label
    merged.config.label2id = loaded.model.config.label2id
    reference = StanceClassifier(merged, loaded.tokenizer, loaded.metadata, device="cpu")
    np.testing.assert_allclose(loaded.predict(PAIRS).probabilities, reference.predict(PAIRS).probabilities, atol=1e-6)

    code = (
        "import sys; from stance.model import StanceClassifier; "
        f"StanceClassifier.from_pretrained({str(adapter)!r}, device='cpu'); print('peft' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "False", "a plain LoRA adapter loads without importing peft"


def test_adapters_it_does_not_understand_go_to_peft_untouched(tmp_path, tiny_model_dir):
    from transformers import AutoModelForSequenceClassification

    dora = build_tiny_adapter_dir(tmp_path / "dora", tiny_model_dir, use_dora=True)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    assert not merge_lora_in_place(model, dora)
    assert all((value == before[name]).all() for name, value in model.state_dict().items()), "left untouched"
    # ... and from_pretrained still loads it, through peft.
    loaded = StanceClassifier.from_pretrained(dora, device="cpu")
    reference = peft_merged(tiny_model_dir, dora)
    np.testing.assert_allclose(
        loaded.model.classifier.weight.detach().numpy(), reference.classifier.weight.detach().numpy()
    )
    np.testing.assert_allclose(
        loaded.model.bert.encoder.layer[0].attention.self.query.weight.detach().numpy(),
        reference.bert.encoder.layer[0].attention.self.query.weight.detach().numpy(),
        atol=1e-6,
    )

    # A tensor it cannot place (here: a head the adapter saves but the base lacks) is peft's to judge.
    from safetensors.torch import load_file, save_file

    odd = tmp_path / "odd"
    shutil.copytree(build_tiny_adapter_dir(tmp_path / "plain", tiny_model_dir), odd)
    tensors = load_file(str(odd / "adapter_model.safetensors"))
    tensors["base_model.model.other_head.weight"] = tensors["base_model.model.classifier.weight"].clone()
    save_file(tensors, str(odd / "adapter_model.safetensors"))
    assert not merge_lora_in_place(model, odd)
    # A pair with one side missing, too.
    del tensors["base_model.model.other_head.weight"]
    missing_b = next(key for key in tensors if key.endswith("lora_B.weight"))
    del tensors[missing_b]
    save_file(tensors, str(odd / "adapter_model.safetensors"))
    assert not merge_lora_in_place(model, odd)
    assert all((value == before[name]).all() for name, value in model.state_dict().items())


def test_the_merge_into_bf16_weights_rounds_once_as_peft_does(tmp_path, tiny_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    adapter = build_tiny_adapter_dir(tmp_path, tiny_model_dir, target_modules=ALL_LINEAR, r=3, lora_alpha=8)
    ours = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, dtype=torch.bfloat16)
    assert merge_lora_in_place(ours, adapter)
    base = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, dtype=torch.bfloat16)
    reference = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload().state_dict()
    for name, value in ours.state_dict().items():
        assert torch.equal(value, reference[name]), name


def test_a_config_that_misstates_the_rank_goes_to_peft(tmp_path, tiny_model_dir):
    from transformers import AutoModelForSequenceClassification

    adapter = build_tiny_adapter_dir(tmp_path, tiny_model_dir)
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps(config | {"r": 6}))  # the tensors have rank 4
    assert not merge_lora_in_place(AutoModelForSequenceClassification.from_pretrained(tiny_model_dir), adapter)


def test_scale_follows_the_config():
    plain = {"peft_type": "LORA", "r": 16, "lora_alpha": 32}
    assert lora_scale(plain) == 2.0
    assert lora_scale(plain | {"use_rslora": True}) == 8.0
    assert lora_scale(plain | {"init_lora_weights": "gaussian", "kasa_config": None, "qalora_group_size": 16}) == 2.0
    for unsupported in (
        {"use_dora": True},
        {"rank_pattern": {"q": 8}},
        {"alpha_pattern": {"q": 8}},
        {"fan_in_fan_out": True},
        {"bias": "all"},
        {"peft_type": "IA3"},
        {"r": 0},
        {"init_lora_weights": "pissa"},  # rewrites the base weights before training
        {"init_lora_weights": "olora"},
        {"alora_invocation_tokens": [5, 6]},  # aLoRA: applies only after these tokens, never merged
        {"a_field_from_a_later_peft": {"on": True}},  # unknown variants go to peft
    ):
        assert lora_scale(plain | unsupported) is None, unsupported


def test_the_embedded_default_is_a_plain_lora_adapter():
    """The embedded default must take the fast path; a peft upgrade that adds a config field
    this module treats as unsupported would otherwise slow every start silently."""
    from stance.model.loading import DEFAULT_MODEL_DIR

    config = json.loads((DEFAULT_MODEL_DIR / "adapter_config.json").read_text())
    assert lora_scale(config) == 2.0
