"""Messy inputs and interruptions, through the real CLI: clear errors, nothing lost.

Each case here is a row of the table in docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

STANCE = str(Path(sys.executable).with_name("stance"))
ENV = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def stance(*args, cwd=None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [STANCE, *map(str, args)], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=600, **kwargs
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ------------------------------------------------------------------ whole-file errors
def test_missing_file(tmp_path, tiny_model_dir):
    line = one_line_error(
        stance("score", "--model", tiny_model_dir, "--input", tmp_path / "nope.csv", "--output", tmp_path / "o.csv")
    )
    assert line == f"stance score: error: {tmp_path / 'nope.csv'}: file not found"


def test_unknown_suffix(tmp_path, tiny_model_dir):
    source = tmp_path / "pairs.txt"
    source.write_text("x")
    line = one_line_error(
        stance("score", "--model", tiny_model_dir, "--input", source, "--output", tmp_path / "o.jsonl")
    )
    assert "cannot tell the format from the suffix '.txt'; use .jsonl, .csv or .parquet" in line


def test_corrupt_parquet(tmp_path, tiny_model_dir):
    source = tmp_path / "pairs.parquet"
    source.write_bytes(b"PAR1 not really")
    line = one_line_error(
        stance("score", "--model", tiny_model_dir, "--input", source, "--output", tmp_path / "o.parquet")
    )
    assert f"{source}: not a readable Parquet file" in line


def test_misnamed_column(tmp_path, tiny_model_dir):
    source = jsonl(tmp_path / "p.jsonl", [{"body": "a", "headline": "b"}])
    line = one_line_error(
        stance("score", "--model", tiny_model_dir, "--input", source, "--output", tmp_path / "o.jsonl")
    )
    assert line.endswith(
        "no premise column 'premise'; the file has columns ['body', 'headline']. Name the right one with --premise-column (or premise_column in a recipe)"
    )


def test_non_utf8_csv_names_the_line(tmp_path, tiny_model_dir):
    source = tmp_path / "p.csv"
    source.write_bytes(b"premise,hypothesis\nok,fine\ncaf\xe9 au lait,coffee\n")
    line = one_line_error(stance("score", "--model", tiny_model_dir, "--input", source, "--output", tmp_path / "o.csv"))
    assert f"{source}, line 3: not valid UTF-8 (byte 30 of the file)" in line


def test_non_utf8_jsonl_names_the_line(tmp_path, tiny_model_dir):
    source = tmp_path / "p.jsonl"
    source.write_bytes(b'{"premise": "a", "hypothesis": "b"}\n{"premise": "caf\xe9", "hypothesis": "b"}\n')
    line = one_line_error(
        stance("score", "--model", tiny_model_dir, "--input", source, "--output", tmp_path / "o.jsonl")
    )
    assert f"{source}, line 2: not valid UTF-8" in line


def test_invalid_json_line(tmp_path, tiny_model_dir):
    source = tmp_path / "p.jsonl"
    source.write_text('{"premise": "a", "hypothesis": "b"}\n{"premise": "a", \n')
    line = one_line_error(
        stance("score", "--model", tiny_model_dir, "--input", source, "--output", tmp_path / "o.jsonl")
    )
    assert f"{source}, line 2: invalid JSON" in line


def test_unknown_training_label(tmp_path, tiny_model_dir):
    train = jsonl(
        tmp_path / "t.jsonl",
        [{"premise": "a", "hypothesis": "b", "label": "support"}, {"premise": "a", "hypothesis": "b", "label": "pro"}],
    )
    line = one_line_error(
        stance(
            "train",
            "--config",
            Path(__file__).parents[1] / "configs" / "sick.yaml",
            "--set",
            f"data.train.0.path={train}",
            "--set",
            f"model.base={tiny_model_dir}",
        )
    )
    assert (
        f"{train}, row 2, column 'label': unknown label 'pro'; expected one of ['support', 'contradict', 'neutral']"
        in line
    )


def test_eval_label_the_model_lacks(tmp_path, tiny_model_dir):
    dev = jsonl(
        tmp_path / "d.jsonl",
        [
            {"premise": "a", "hypothesis": "b", "label": "support"},
            {"premise": "a", "hypothesis": "b", "label": "unrelated"},
        ],
    )
    line = one_line_error(stance("eval", "--model", tiny_model_dir, "--data", dev, "--output-dir", tmp_path / "r"))
    assert f"{dev}, row 2, column 'label': unknown label 'unrelated'" in line
    ok = stance(
        "eval",
        "--model",
        tiny_model_dir,
        "--data",
        dev,
        "--output-dir",
        tmp_path / "r",
        "--label-map",
        "support=support",
        "unrelated=neutral",
        "--no-progress",
    )
    assert ok.returncode == 0, ok.stderr


def test_pickle_model_refused_from_cli(tmp_path, tiny_model_dir):
    import shutil

    import torch

    target = tmp_path / "m"
    shutil.copytree(tiny_model_dir, target)
    (target / "model.safetensors").unlink()
    torch.save({}, target / "pytorch_model.bin")
    source = jsonl(tmp_path / "p.jsonl", [{"premise": "a", "hypothesis": "b"}])
    line = one_line_error(stance("score", "--model", target, "--input", source))
    assert "only pickle weights found (pytorch_model.bin); stance loads safetensors only" in line


# ------------------------------------------------------------------ per-row problems
def test_per_row_problems_are_marked_and_the_rest_scored(tmp_path, tiny_model_dir):
    rows = [
        {"id": "a", "premise": "a man is playing", "hypothesis": "a man"},
        {"id": "b", "premise": "", "hypothesis": "a man"},
        {"id": "c", "premise": "   \t", "hypothesis": "a man"},
        {"id": "d", "premise": None, "hypothesis": "a man"},
        {"id": "e", "premise": 42, "hypothesis": "a man"},
        {"id": "a", "premise": "duplicate id is kept", "hypothesis": "a man"},
        {"id": "g", "premise": "the park " * 2_000_000, "hypothesis": "a man"},  # an 18 MB text
        {"id": "h", "hypothesis": "premise key absent"},
    ]
    source = jsonl(tmp_path / "p.jsonl", rows)
    result = stance(
        "score", "--model", tiny_model_dir, "--input", source, "--output", tmp_path / "o.jsonl", "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r["id"] for r in out] == [r["id"] for r in rows]
    assert [r["error"] for r in out] == [
        None,
        "empty premise",
        "empty premise",
        "missing premise (null)",
        "premise is int, expected text",
        None,
        None,
        "missing premise (null)",
    ]
    assert out[6]["truncated"] is True and out[6]["label"] in ("support", "contradict", "neutral")
    assert out[6]["premise"] == rows[6]["premise"]  # the text itself is passed through whole


def test_csv_with_newlines_and_quotes(tmp_path, tiny_model_dir):
    source = tmp_path / "p.csv"
    source.write_text('id,premise,hypothesis\n1,"line one\nline ""two"", with comma",a man\n2,plain,"x\r\ny"\n')
    result = stance(
        "score", "--model", tiny_model_dir, "--input", source, "--output", tmp_path / "o.csv", "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(tmp_path / "o.csv", dtype=str, keep_default_na=False)
    assert list(out["id"]) == ["1", "2"]
    assert out.loc[0, "premise"] == 'line one\nline "two", with comma' and out.loc[1, "hypothesis"] == "x\r\ny"
    assert (out["error"] == "").all()


def test_parquet_with_wrong_column_types(tmp_path, tiny_model_dir):
    source = tmp_path / "p.parquet"
    pq.write_table(pa.table({"id": [1, 2], "premise": pa.array([3, 4], pa.int64()), "hypothesis": ["a", "b"]}), source)
    result = stance(
        "score", "--model", tiny_model_dir, "--input", source, "--output", tmp_path / "o.parquet", "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    out = pd.read_parquet(tmp_path / "o.parquet")
    assert list(out["id"]) == [1, 2] and list(out["error"]) == ["premise is int, expected text"] * 2


# ------------------------------------------------------------------ determinism
def test_same_input_gives_identical_bytes(tmp_path, tiny_model_dir):
    source = jsonl(
        tmp_path / "p.jsonl",
        [{"premise": f"a man {i} is playing " * (i % 7 + 1), "hypothesis": "a man"} for i in range(60)],
    )
    first = stance(
        "score", "--model", tiny_model_dir, "--input", source, "--output", tmp_path / "1.jsonl", "--no-progress"
    )
    second = stance(
        "score", "--model", tiny_model_dir, "--input", source, "--output", tmp_path / "2.jsonl", "--no-progress"
    )
    assert first.returncode == second.returncode == 0
    assert (tmp_path / "1.jsonl").read_bytes() == (tmp_path / "2.jsonl").read_bytes()
    other = stance(
        "score",
        "--model",
        tiny_model_dir,
        "--input",
        source,
        "--output",
        tmp_path / "3.jsonl",
        "--batch-size",
        "5",
        "--no-progress",
    )
    assert other.returncode == 0
    a = pd.read_json(tmp_path / "1.jsonl", lines=True)
    b = pd.read_json(tmp_path / "3.jsonl", lines=True)
    assert list(a["label"]) == list(b["label"])
    columns = ["prob_support", "prob_contradict", "prob_neutral"]
    # Different batch sizes pad differently; float results differ by at most ~1e-7 (documented bound 1e-5).
    assert np.abs(a[columns].to_numpy() - b[columns].to_numpy()).max() < 1e-5


# ------------------------------------------------------------------ interruption
@pytest.mark.slow
def test_kill_and_resume_at_twenty_random_points(tmp_path, tiny_model_dir):
    rng = np.random.default_rng(7)
    words = "the man dog is playing not running in park a woman kids guitar".split()
    rows = [
        {
            "id": i,
            "premise": " ".join(rng.choice(words, size=rng.integers(3, 40))),
            "hypothesis": " ".join(rng.choice(words, size=5)),
        }
        for i in range(6000)
    ]
    source = jsonl(tmp_path / "p.jsonl", rows)
    args = ["score", "--model", tiny_model_dir, "--input", source, "--chunk-rows", "250", "--no-progress"]
    reference = tmp_path / "reference.jsonl"
    started = time.perf_counter()
    assert stance(*args, "--output", reference).returncode == 0
    full_run = time.perf_counter() - started
    chooser = random.Random(11)
    for attempt in range(20):
        output = tmp_path / f"out-{attempt}.jsonl"
        process = subprocess.Popen(
            [STANCE, *map(str, args), "--output", str(output)],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(chooser.uniform(0.2, full_run))
        process.send_signal(signal.SIGINT if attempt % 2 else signal.SIGKILL)
        process.wait(timeout=120)
        if output.exists():
            # Finished before the signal (or the signal came after the final rename): whatever
            # stands under the output name must be the complete output, never a partial one.
            assert output.read_bytes() == reference.read_bytes(), (
                f"attempt {attempt}: partial file under the final name"
            )
            continue
        assert process.returncode != 0
        resumed = stance(*args, "--output", output, "--resume")
        assert resumed.returncode == 0, resumed.stderr
        assert output.read_bytes() == reference.read_bytes(), f"attempt {attempt}"
        assert not Path(str(output) + ".parts").exists()
