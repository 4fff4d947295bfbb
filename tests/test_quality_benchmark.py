"""benchmarks/quality.py --add-to: a result grown by data sets, only for the same model files."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import build_tiny_model_dir

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
SPEC = importlib.util.spec_from_file_location("quality", BENCHMARKS / "quality.py")
quality = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(quality)


@pytest.fixture(autouse=True)
def small_baselines(tmp_path, monkeypatch):
    """Our own sets only (the shared data is not read), baselines fitted on one statement part."""
    monkeypatch.setattr(quality, "DATA", tmp_path)
    one_part = [quality.REPO / "data" / "statements_train" / "part1.jsonl"]
    monkeypatch.setattr(quality, "statement_training_files", lambda classifier: one_part)


@pytest.fixture
def scored(tmp_path, tiny_model_dir):
    """The tiny model scored on the 90-pair attempts set (ours: benchmarks/data)."""
    first = tmp_path / "first.json"
    argv = ["--model", str(tiny_model_dir), "--no-reference", "--datasets", "statements_attempts"]
    assert quality.main([*argv, "--output", str(first)]) == 0
    return first


def test_add_to_keeps_the_earlier_rows_and_records_both_commands(tmp_path, scored, tiny_model_dir):
    # the same files in another folder (as export_default copies a run's adapter into model/default)
    copy = shutil.copytree(tiny_model_dir, tmp_path / "exported")
    merged = tmp_path / "merged.json"
    argv = ["--model", str(copy), "--no-reference", "--datasets", "statements_parties", "--add-to", str(scored)]
    assert quality.main([*argv, "--output", str(merged)]) == 0
    result, earlier = json.loads(merged.read_text()), json.loads(scored.read_text())
    assert {row["dataset"] for row in result["rows"]} == {"statements_attempts", "statements_parties"}
    kept = [row for row in result["rows"] if row["dataset"] == "statements_attempts"]
    assert kept == earlier["rows"], "the earlier data set's rows are copied unchanged"
    assert result["command"] == earlier["command"] and result["model"] == str(copy)
    assert [entry["scored"] for entry in result["added"]] == [[["statements_parties", "dev"]]]
    assert "--add-to" in result["added"][0]["command"] and result["model_sha256"] == earlier["model_sha256"]
    # scoring a data set the earlier file holds replaces its rows rather than repeating them
    again = tmp_path / "again.json"
    argv = ["--model", str(copy), "--no-reference", "--datasets", "statements_attempts", "--add-to", str(merged)]
    assert quality.main([*argv, "--output", str(again)]) == 0
    datasets = [row["dataset"] for row in json.loads(again.read_text())["rows"] if row["system"] == "model"]
    assert sorted(datasets) == ["statements_attempts", "statements_parties"]


def test_add_to_refuses_other_model_files_or_another_backend(tmp_path, scored):
    other = build_tiny_model_dir(tmp_path / "other", seed=1)
    argv = ["--no-reference", "--datasets", "statements_parties", "--add-to", str(scored), "--output", "x.json"]
    with pytest.raises(SystemExit, match="with other files than"):
        quality.main(["--model", str(other), *argv])
    earlier = json.loads(scored.read_text())
    # the folder the earlier result scored, retrained since: the recorded digest no longer matches
    retrained = tmp_path / "retrained"
    shutil.copytree(other, retrained)
    changed = dict(earlier, model=str(retrained))
    (tmp_path / "changed.json").write_text(json.dumps(changed))
    with pytest.raises(SystemExit, match="with other files than"):
        quality.main(["--model", str(retrained), *argv[:4], str(tmp_path / "changed.json"), *argv[5:]])
    with pytest.raises(SystemExit, match="its backend is 'torch', this run's 'torch-bf16'"):
        quality.main(["--model", earlier["model"], "--backend", "torch-bf16", *argv])
    with pytest.raises(SystemExit, match="its reference is None"):
        quality.main(["--model", earlier["model"], *argv[1:]])
    for name, text, message in (
        ("broken.json", "{", "cannot read it as a quality.py result"),
        ("list.json", "[]", "not a quality.py result"),
        ("old.json", json.dumps({k: v for k, v in earlier.items() if k != "model_sha256"}), "records no model_sha256"),
    ):
        (tmp_path / name).write_text(text)
        with pytest.raises(SystemExit, match=message):
            quality.main(["--model", earlier["model"], *argv[:4], str(tmp_path / name), *argv[5:]])


def test_splits_dev_leaves_the_test_split_unscored_and_add_to_keeps_it(tmp_path, tiny_model_dir):
    both, dev = tmp_path / "both.json", tmp_path / "dev.json"
    argv = ["--model", str(tiny_model_dir), "--no-reference", "--datasets", "statements"]
    assert quality.main([*argv, "--splits", "test", "--output", str(both)]) == 0
    assert {row["split"] for row in json.loads(both.read_text())["rows"]} == {"test"}
    assert quality.main([*argv, "--splits", "dev", "--add-to", str(both), "--output", str(dev)]) == 0
    splits = [row["split"] for row in json.loads(dev.read_text())["rows"] if row["system"] == "model"]
    assert sorted(splits) == ["dev", "test"], "the earlier test row is kept, the dev row added"
