"""The merged-weights cache (stance.model.merged_cache): a second load of an adapter reads the
merged copy instead of merging, with bit-identical weights and answers; a changed adapter, a
damaged entry, caching turned off and an unwritable cache all still load the right model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from stance.model import StanceClassifier, lora, merged_cache
from tests.conftest import build_tiny_adapter_dir
from tests.test_classifier import PAIRS


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "merged"
    monkeypatch.setenv(merged_cache.ENV_VAR, str(folder))
    return folder


@pytest.fixture
def adapter(tmp_path, tiny_model_dir):
    return build_tiny_adapter_dir(tmp_path, tiny_model_dir)


def entries(cache, dtype_name):
    return sorted(p for p in cache.glob(f"*/{dtype_name}-*") if p.is_dir())


def no_merging(monkeypatch):
    """Make any merge fail the test: a load that merges did not read the cache."""

    def refuse(*args, **kwargs):
        raise AssertionError("merged again instead of reading the cache")

    monkeypatch.setattr(lora, "merge_lora_in_place", refuse)


def state(classifier):
    return {name: tensor.clone() for name, tensor in classifier.model.state_dict().items()}


@pytest.mark.parametrize(("backend", "dtype_name"), [("torch", "fp32"), ("torch-bf16", "bf16")])
def test_second_load_reads_the_merged_copy_bit_for_bit(cache, adapter, monkeypatch, capsys, backend, dtype_name):
    first = StanceClassifier.from_pretrained(adapter, device="cpu", backend=backend)
    assert "merged the adapter once and cached it" in capsys.readouterr().err
    (entry,) = entries(cache, dtype_name)
    assert load_file(str(entry / "model.safetensors"))["classifier.weight"].dtype == first.model.dtype
    no_merging(monkeypatch)
    second = StanceClassifier.from_pretrained(adapter, device="cpu", backend=backend)
    assert capsys.readouterr().err == ""
    before, after = state(first), state(second)
    assert before.keys() == after.keys()
    for name in before:
        assert torch.equal(before[name], after[name]), name
    assert second.model.dtype == (torch.bfloat16 if backend == "torch-bf16" else torch.float32)
    np.testing.assert_array_equal(first.predict(PAIRS).probabilities, second.predict(PAIRS).probabilities)
    assert second.predict(PAIRS).labels == first.predict(PAIRS).labels


def test_a_changed_adapter_is_merged_again_and_replaces_the_old_entry(cache, adapter, monkeypatch):
    StanceClassifier.from_pretrained(adapter, device="cpu")
    (old,) = entries(cache, "fp32")
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    weights = {name: tensor * 2 if "lora_B" in name else tensor for name, tensor in weights.items()}
    save_file(weights, str(adapter / "adapter_model.safetensors"))
    changed = StanceClassifier.from_pretrained(adapter, device="cpu")
    (new,) = entries(cache, "fp32")
    assert new != old and not old.exists()
    monkeypatch.setenv(merged_cache.ENV_VAR, "0")  # the reference: a plain merge of the changed adapter
    reference = StanceClassifier.from_pretrained(adapter, device="cpu")
    np.testing.assert_array_equal(changed.predict(PAIRS).probabilities, reference.predict(PAIRS).probabilities)


def test_the_key_covers_the_head_labels_and_the_precision(cache, adapter):
    support_first = {0: "support", 1: "neutral", 2: "contradict"}
    contradict_first = {0: "contradict", 1: "neutral", 2: "support"}
    keys = {
        merged_cache.entry_dir(adapter, "fp32", support_first),
        merged_cache.entry_dir(adapter, "fp32", contradict_first),
        merged_cache.entry_dir(adapter, "bf16", support_first),
    }
    assert len(keys) == 3
    assert merged_cache.entry_dir(adapter, "fp32", support_first) in keys  # stable for the same inputs
    with pytest.raises(ValueError, match="fp32"):
        merged_cache.entry_dir(adapter, "fp16", support_first)


def test_a_damaged_entry_is_removed_and_merged_again(cache, adapter, capsys):
    expected = StanceClassifier.from_pretrained(adapter, device="cpu").predict(PAIRS).probabilities
    (entry,) = entries(cache, "fp32")
    weights = entry / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    capsys.readouterr()
    again = StanceClassifier.from_pretrained(adapter, device="cpu")
    err = capsys.readouterr().err
    assert "are damaged" in err and "merging again" in err and "cached it" in err
    np.testing.assert_array_equal(again.predict(PAIRS).probabilities, expected)
    assert entries(cache, "fp32") == [entry] and load_file(str(weights))  # rewritten whole


def test_caching_off_writes_nothing(tmp_path, adapter, monkeypatch):
    monkeypatch.setenv(merged_cache.ENV_VAR, "0")
    monkeypatch.setenv("STANCE_CACHE_DIR", str(tmp_path / "bases"))
    StanceClassifier.from_pretrained(adapter, device="cpu")
    assert merged_cache.cache_root() is None
    assert not (tmp_path / "bases" / "merged").exists()


def test_an_unwritable_cache_is_reported_and_the_model_still_loads(tmp_path, adapter, monkeypatch, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv(merged_cache.ENV_VAR, str(blocker / "merged"))
    classifier = StanceClassifier.from_pretrained(adapter, device="cpu")
    err = capsys.readouterr().err
    assert "could not cache the merged weights" in err and "STANCE_MERGED_CACHE=0" in err
    monkeypatch.setenv(merged_cache.ENV_VAR, "0")
    reference = StanceClassifier.from_pretrained(adapter, device="cpu")
    np.testing.assert_array_equal(classifier.predict(PAIRS).probabilities, reference.predict(PAIRS).probabilities)


def test_onnx_backends_do_not_cache_a_merged_copy(cache, adapter):
    pytest.importorskip("onnxruntime")
    StanceClassifier.from_pretrained(adapter, device="cpu", backend="onnx")
    assert not entries(cache, "fp32") and not entries(cache, "bf16")
