"""The real console script in a subprocess: train -> eval -> score, and user errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
STANCE = str(Path(sys.executable).with_name("stance"))


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([STANCE, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=900)


@pytest.mark.slow
@pytest.mark.integration
def test_train_eval_score_end_to_end(tmp_path, tiny_model_dir, data_dir):
    model_dir = tmp_path / "model"
    trained = run(
        "train",
        "--config",
        "configs/sick.yaml",
        "--set",
        f"model.base={tiny_model_dir}",
        "--set",
        f"data.train.0.path={data_dir / 'sick' / 'train.jsonl'}",
        "--set",
        "data.train.0.max_rows=300",
        "--set",
        f"data.dev.0.path={data_dir / 'sick' / 'dev.jsonl'}",
        "--set",
        "data.dev.0.max_rows=100",
        "--set",
        "training.epochs=2",
        "--set",
        "model.max_length=64",
        "--set",
        f"training.output_dir={model_dir}",
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    metadata = json.loads((model_dir / "stance.json").read_text())
    assert metadata["training"]["training"]["epochs"] == 2.0
    assert metadata["data_fingerprints"]["train"]["sick"]["rows_used"] == 300
    assert "sick_macro_f1" in metadata["metrics"]["dev"]
    assert metadata["versions"]["transformers"]

    report_dir = tmp_path / "report"
    evaluated = run(
        "eval",
        "--model",
        str(model_dir),
        "--data",
        str(data_dir / "sick" / "dev.jsonl"),
        "--output-dir",
        str(report_dir),
        "--no-progress",
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    metrics = json.loads((report_dir / "metrics.json").read_text())
    assert metrics["overall"]["n"] == 495 and 0.0 <= metrics["overall"]["macro_f1"] <= 1.0
    assert (report_dir / "confusion_matrix.png").stat().st_size > 10_000
    assert "macro-F1" in (report_dir / "report.md").read_text()

    source = tmp_path / "pairs.csv"
    pd.read_json(data_dir / "sick" / "test.jsonl", lines=True).head(200).to_csv(source, index=False)
    scored_path = tmp_path / "scored.csv"
    clash = run("score", "--model", str(model_dir), "--input", str(source), "--output", str(scored_path))
    assert clash.returncode == 2 and "already has column(s) ['label']" in clash.stderr
    scored = run(
        "score",
        "--model",
        str(model_dir),
        "--input",
        str(source),
        "--output",
        str(scored_path),
        "--no-progress",
        "--output-prefix",
        "pred_",
    )
    assert scored.returncode == 0, scored.stderr[-3000:]
    original, result = pd.read_csv(source, dtype=str), pd.read_csv(scored_path, dtype=str, keep_default_na=False)
    assert list(result["id"]) == list(original["id"])
    added = [
        "pred_label",
        "pred_prob_support",
        "pred_prob_contradict",
        "pred_prob_neutral",
        "pred_truncated",
        "pred_error",
    ]
    assert list(result.columns) == [*original.columns, *added]
    assert list(result["label"]) == list(original["label"])  # the gold labels are untouched
    assert set(result["pred_label"]) <= {"support", "contradict", "neutral"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("score", "--input", "absent.jsonl", "--model", "{tiny}"),
            "stance score: error: absent.jsonl: file not found",
        ),
        (("score", "--input", "{pairs}", "--model", "{tiny}", "--premise-column", "body"), "no premise column 'body'"),
        (("score", "--input", "{pairs}", "--model", "{tmp}/missing-model"), "model directory not found"),
        (("train", "--config", "{tmp}/none.yaml"), "stance train: error: {tmp}/none.yaml: recipe not found"),
        (("train", "--config", "configs/sick.yaml", "--set", "training.epochz=1"), "unknown key(s) ['epochz']"),
        (
            ("calibrate", "--model", "{tiny}", "--data", "{pairs}", "--backend", "torch-bf16"),
            "--backend torch-bf16 changes the logits the temperature is fitted on",
        ),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path, tiny_model_dir, args, message):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"premise": "a man", "hypothesis": "a dog"}) + "\n")
    values = {"tiny": str(tiny_model_dir), "pairs": str(pairs), "tmp": str(tmp_path)}
    result = run(*(a.format(**values) for a in args), cwd=tmp_path if args[0] == "score" else REPO)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert message.format(**values) in lines[0]


@pytest.mark.parametrize("backend", ["torch", "torch-bf16"])
def test_score_prints_a_table_without_output(tmp_path, tiny_model_dir, backend):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        json.dumps({"premise": "a man is playing", "hypothesis": "a man"})
        + "\n"
        + json.dumps({"premise": "", "hypothesis": "x"})
        + "\n"
    )
    result = run("score", "--model", str(tiny_model_dir), "--input", str(pairs), "--backend", backend)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["premise", "hypothesis", "label"]
    assert "ERROR" in lines[3] and "empty premise" in lines[3]


def test_score_abstain_threshold(tmp_path, tiny_model_dir):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"premise": f"a man {i}", "hypothesis": "a dog"}) + "\n" for i in range(5)))
    out = tmp_path / "out.jsonl"
    result = run(
        "score",
        "--model",
        str(tiny_model_dir),
        "--input",
        str(pairs),
        "--output",
        str(out),
        "--abstain-threshold",
        "1.0",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    assert {json.loads(line)["label"] for line in out.read_text().splitlines()} == {"neutral"}


def test_score_names_the_backend_auto_chose_and_calibrate_fits_on_fp32(tmp_path, tiny_model_dir):
    """On a CPU with bf16 instructions (this one, and CI's) --backend auto, the default, scores
    with bf16 weights and says so; calibrate resolves auto to exact fp32 instead of refusing."""
    from stance.model.classifier import cpu_has_bf16_instructions

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"premise": "a man is playing", "hypothesis": "a man", "label": "support"}) + "\n")
    out = tmp_path / "out.jsonl"
    result = run("score", "--model", str(tiny_model_dir), "--input", str(pairs), "--output", str(out),
                 "--output-prefix", "pred_")  # fmt: skip
    assert result.returncode == 0, result.stderr
    chose_bf16 = "backend torch-bf16, chosen by --backend auto" in result.stderr
    assert chose_bf16 == cpu_has_bf16_instructions(), result.stderr
    exact = run("score", "--model", str(tiny_model_dir), "--input", str(pairs), "--output", str(tmp_path / "o2.jsonl"),
                "--output-prefix", "pred_", "--backend", "torch")  # fmt: skip
    assert exact.returncode == 0 and "chosen by --backend auto" not in exact.stderr
    # calibrate: auto is fp32 there, so the temperature is the one --backend torch fits, and the
    # calibrated model saves (a bf16-loaded one would refuse to).
    temperatures = []
    for extra in ([], ["--backend", "torch"]):
        saved = tmp_path / f"calibrated{len(extra)}"
        calibrated = run("calibrate", "--model", str(tiny_model_dir), "--data", str(pairs), "--output", str(saved),
                         "--no-progress", *extra)  # fmt: skip
        assert calibrated.returncode == 0, calibrated.stderr
        temperatures.append(json.loads((saved / "stance.json").read_text())["temperature"])
    assert temperatures[0] == temperatures[1]
