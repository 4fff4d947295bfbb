"""The merged-weights cache (stance.model.merged_cache): a second load of an adapter reads the
merged copy instead of merging, with bit-identical weights and answers; a changed adapter, a
damaged entry, caching turned off and an unwritable cache all still load the right model."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from stance.model import StanceClassifier, lora, merged_cache
from tests.conftest import build_tiny_adapter_dir, build_tiny_model_dir
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


def test_a_changed_adapter_is_merged_again_not_read_from_the_old_entry(cache, adapter, monkeypatch):
    StanceClassifier.from_pretrained(adapter, device="cpu")
    (old,) = entries(cache, "fp32")
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    weights = {name: tensor * 2 if "lora_B" in name else tensor for name, tensor in weights.items()}
    save_file(weights, str(adapter / "adapter_model.safetensors"))
    changed = StanceClassifier.from_pretrained(adapter, device="cpu")
    assert len(entries(cache, "fp32")) == 2 and old in entries(cache, "fp32")  # kept until evicted, never read
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


def test_a_changed_base_changes_the_key(cache, tmp_path):
    base = build_tiny_model_dir(tmp_path / "base")
    adapter = build_tiny_adapter_dir(tmp_path, base)
    labels = {0: "support", 1: "neutral", 2: "contradict"}
    before = merged_cache.entry_dir(adapter, "fp32", labels)
    build_tiny_model_dir(tmp_path / "base", seed=5)  # the same base folder, other weights
    assert merged_cache.entry_dir(adapter, "fp32", labels) != before


def test_an_adapter_on_a_hub_base_is_not_cached(cache, adapter):
    record = json.loads((adapter / "stance.json").read_text())
    (adapter / "stance.json").write_text(json.dumps(record | {"base_model": "some-org/some-base"}))
    assert merged_cache.entry_dir(adapter, "fp32", {0: "support", 1: "neutral", 2: "contradict"}) is None


def test_a_failed_save_is_reported_and_the_model_still_loads(cache, adapter, monkeypatch, capsys):
    def disk_full(self, *args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: File too large (os error 27)")

    monkeypatch.setattr(torch.nn.Module, "save_pretrained", disk_full, raising=False)
    from transformers import PreTrainedModel

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", disk_full)
    classifier = StanceClassifier.from_pretrained(adapter, device="cpu")
    err = capsys.readouterr().err
    assert "could not cache the merged weights" in err and "File too large" in err
    assert not entries(cache, "fp32") and not list(cache.glob("*/.merging-*"))
    monkeypatch.setenv(merged_cache.ENV_VAR, "0")
    reference = StanceClassifier.from_pretrained(adapter, device="cpu")
    np.testing.assert_array_equal(classifier.predict(PAIRS).probabilities, reference.predict(PAIRS).probabilities)


def test_an_entry_removed_by_another_process_right_after_writing_is_no_error(cache, adapter, monkeypatch):
    rename = os.rename

    def rename_then_lose(source, target):
        rename(source, target)
        shutil.rmtree(target)  # another process pruned it at once

    monkeypatch.setattr(merged_cache.os, "rename", rename_then_lose)
    classifier = StanceClassifier.from_pretrained(adapter, device="cpu")
    assert classifier.predict(PAIRS).labels


def test_the_cache_keeps_the_most_recently_used_entries(cache, tmp_path, tiny_model_dir):
    adapters = [build_tiny_adapter_dir(tmp_path / f"a{index}", tiny_model_dir) for index in range(3)]
    StanceClassifier.from_pretrained(adapters[0], device="cpu", backend="torch-bf16")
    fp32 = []
    for adapter in adapters:
        StanceClassifier.from_pretrained(adapter, device="cpu")
        fp32.append(next(e for e in entries(cache, "fp32") if e not in fp32))
    (bf16,) = entries(cache, "bf16")  # one precision never evicted the other
    for entry, age in zip([fp32[0], bf16, fp32[1], fp32[2]], (1, 3, 4, 5), strict=True):
        os.utime(entry, (age, age))  # fp32[0] the oldest...
    StanceClassifier.from_pretrained(adapters[0], device="cpu")  # ...until read: now the most recent
    StanceClassifier.from_pretrained(build_tiny_adapter_dir(tmp_path / "a3", tiny_model_dir), device="cpu")
    assert len(entries(cache, "fp32") + entries(cache, "bf16")) == merged_cache.MAX_ENTRIES
    assert fp32[0].exists() and not bf16.exists()  # the least recently used went, not the oldest written

    os.utime(fp32[2])  # recent, but its adapter is deleted: it goes at the next write all the same
    shutil.rmtree(adapters[2])
    StanceClassifier.from_pretrained(adapters[1], device="cpu", backend="torch-bf16")
    assert not fp32[2].exists() and fp32[0].exists() and fp32[1].exists()


def test_cache_merged_false_writes_nothing(cache, adapter):
    StanceClassifier.from_pretrained(adapter, device="cpu", cache_merged=False)
    assert not cache.exists() or not entries(cache, "fp32")


def test_onnx_backends_do_not_cache_a_merged_copy(cache, adapter):
    pytest.importorskip("onnxruntime")
    StanceClassifier.from_pretrained(adapter, device="cpu", backend="onnx")
    assert not entries(cache, "fp32") and not entries(cache, "bf16")
