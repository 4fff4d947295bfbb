"""stance eval / calibrate / --compare through the real CLI on the tiny model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from stance.eval.evaluate import evaluate_file
from stance.model import StanceClassifier
from stance.training.config import DatasetConfig
from tests.test_reliability import jsonl, stance

FNC_ROWS = [
    {
        "premise": "the man is playing a guitar in the park",
        "hypothesis": "a man plays",
        "label": "support",
        "source_label": "agree",
        "src": "fnc1",
    },
    {
        "premise": "nobody is playing",
        "hypothesis": "a man plays",
        "label": "contradict",
        "source_label": "disagree",
        "src": "fnc1",
    },
    {
        "premise": "the dog is running " * 30,
        "hypothesis": "a dog",
        "label": "neutral",
        "source_label": "discuss",
        "src": "fnc1",
    },
    {
        "premise": "two kids are eating food",
        "hypothesis": "a car",
        "label": "neutral",
        "source_label": "unrelated",
        "src": "other",
    },
] * 5


def test_eval_writes_every_report(tmp_path, tiny_model_dir):
    data = jsonl(tmp_path / "dev.jsonl", FNC_ROWS)
    result = stance(
        "eval",
        "--model",
        tiny_model_dir,
        "--data",
        data,
        "--output-dir",
        tmp_path / "r",
        "--source-column",
        "src",
        "--backend",
        "torch-bf16",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    for name in (
        "metrics.json",
        "report.md",
        "confusion_matrix.png",
        "reliability.png",
        "precision_coverage.png",
        "errors.jsonl",
    ):
        assert (tmp_path / "r" / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["backend"] == "torch-bf16", "a backend that changes the weights is recorded with its figures"
    assert "backend: torch-bf16" in (tmp_path / "r" / "report.md").read_text()
    assert set(metrics["by_source"]) == {"fnc1", "other"} and metrics["by_source"]["fnc1"]["n"] == 15
    assert set(metrics["fnc1"]) == {"neutral_as_unrelated", "neutral_as_discuss"}
    assert metrics["fnc1"]["neutral_as_unrelated"]["max_score"] == pytest.approx(15 * 1.0 + 5 * 0.25)
    assert sum(b["n"] for b in metrics["by_length"].values()) == 20
    errors = [json.loads(line) for line in (tmp_path / "r" / "errors.jsonl").read_text().splitlines()]
    assert all(e["true"] != e["predicted"] for e in errors)
    assert "FNC-1 weighted score" in (tmp_path / "r" / "report.md").read_text()


def test_calibrate_stores_temperature_and_lowers_held_out_ece(tmp_path, tiny_model_dir, data_dir):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    # Make the random model confidently wrong-ish: scale its head so calibration has work to do.
    classifier = StanceClassifier.from_pretrained(model, device="cpu")
    with np.errstate(all="ignore"):
        classifier.model.classifier.weight.data *= 40.0
    classifier.save_pretrained(model)
    result = stance("calibrate", "--model", model, "--data", data_dir / "sick" / "dev.jsonl", "--no-progress")
    assert result.returncode == 0, result.stderr
    temperature = json.loads((model / "stance.json").read_text())["temperature"]
    assert temperature > 1.0
    held_out = DatasetConfig(path=str(data_dir / "sick" / "test.jsonl"), max_rows=600)
    calibrated = evaluate_file(StanceClassifier.from_pretrained(model, device="cpu"), held_out)
    assert calibrated["calibration"]["ece"] < calibrated["calibration"]["ece_uncalibrated"]


def test_compare_two_models(tmp_path, tiny_model_dir):
    from tests.conftest import build_tiny_model_dir

    other = build_tiny_model_dir(tmp_path / "other", seed=5)
    data = jsonl(tmp_path / "dev.jsonl", FNC_ROWS)
    result = stance(
        "eval", "--compare", tiny_model_dir, other, "--data", data, "--output-dir", tmp_path / "c", "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    comparison = json.loads((tmp_path / "c" / "comparison.json").read_text())
    assert len(comparison["models"]) == 2 and "mcnemar" in comparison["models"][1]["vs_first"]
    assert "McNemar" in (tmp_path / "c" / "comparison.md").read_text()
    # One figure with both models' curves (F1 per class, precision/coverage, reliability).
    from PIL import Image

    with Image.open(tmp_path / "c" / "comparison.png") as figure:
        assert figure.width > 1200 and figure.height > 400
    assert f"wrote {tmp_path / 'c' / 'comparison.png'}" in result.stdout
    # --model with --compare: that model is compared too, first (it used to be dropped without a word)
    result = stance(
        "eval", "--model", other, "--compare", tiny_model_dir, other, "--data", data, "--output-dir",
        tmp_path / "m", "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    compared = json.loads((tmp_path / "m" / "comparison.json").read_text())["models"]
    assert [entry["model"] for entry in compared] == [str(other), str(tiny_model_dir)]
