"""benchmarks/decide.py: the declared rules computed from result files, each able to fail."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location(
    "decide", Path(__file__).resolve().parents[1] / "benchmarks" / "decide.py"
)
decide = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(decide)


def recipe_dev(path: Path, default: dict[str, float], candidate: dict[str, float]) -> Path:
    in_mean = ["statements", "sick", "fnc1"]

    def model(scores):
        mean = sum(scores[name] for name in in_mean) / len(in_mean)
        return {"dev": {name: {"macro_f1": value} for name, value in scores.items()}, "mean_macro_f1": mean}

    path.write_text(json.dumps({"in_mean": in_mean, "models": {"d": model(default), "c": model(candidate)}}))
    return path


def quality(path: Path, macro: float, contradict: float) -> Path:
    row = {"dataset": "fnc1", "split": "dev", "system": "model", "long_text": "truncate", "macro_f1": macro}
    path.write_text(json.dumps({"rows": [{**row, "system": "majority"}, {**row, "f1": {"contradict": contradict}}]}))
    return path


def pair(label: str, contradict: float) -> dict:
    rest = (1 - contradict) / 2
    return {
        "label": label,
        "expected": "contradict",
        "probabilities": {"support": rest, "contradict": contradict, "neutral": rest},
    }


@pytest.mark.parametrize(
    ("candidate_dev", "fnc1", "candidate_pair", "failed"),
    [
        ({"statements": 0.86, "sick": 0.87, "fnc1": 0.70, "parties": 0.1}, (0.68, 0.30), pair("neutral", 0.30), []),
        (
            {"statements": 0.84, "sick": 0.90, "fnc1": 0.70, "parties": 0.9},
            (0.68, 0.30),
            pair("contradict", 0.5),
            ["2"],
        ),
        ({"statements": 0.90, "sick": 0.84, "fnc1": 0.71, "parties": 0.9}, (0.68, 0.30), pair("neutral", 0.30), ["3"]),
        (
            {"statements": 0.85, "sick": 0.86, "fnc1": 0.69, "parties": 0.9},
            (0.66, 0.27),
            pair("neutral", 0.20),
            ["1", "4a", "4b", "5"],
        ),
    ],
)
def test_each_rule_is_computed_from_the_files(tmp_path, monkeypatch, candidate_dev, fnc1, candidate_pair, failed):
    default_dev = {"statements": 0.848, "sick": 0.869, "fnc1": 0.688, "parties": 0.8}
    pairs = {"d": pair("neutral", 0.27), "c": candidate_pair}
    monkeypatch.setattr(decide, "motivating_pair", pairs.__getitem__)
    args = argparse.Namespace(
        recipe_dev=str(recipe_dev(tmp_path / "r.json", default_dev, candidate_dev)),
        default="d",
        candidate="c",
        default_quality=str(quality(tmp_path / "qd.json", 0.670, 0.282)),
        candidate_quality=str(quality(tmp_path / "qc.json", *fnc1)),
        fnc1_contradict_min=None,
        max_fall=0.02,
        rules="rules.md",
    )
    decision = decide.decide(args)
    missed = [rule.split()[0] for rule, (*_, passed) in decision["results"].items() if not passed]
    assert missed == failed
    assert decision["shipped"] is (not failed)
    assert "parties" not in decision["dev_changes"], "a watched set (not in the mean) never decides"
