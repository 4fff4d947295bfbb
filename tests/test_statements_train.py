"""The statement training pairs must stay apart from every statement pair used to judge the model."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _pairs(path: Path) -> list[tuple[str, str]]:
    return [(row["premise"], row["hypothesis"]) for row in map(json.loads, path.read_text().splitlines())]


def _writers_check():
    """data/statements_train/check.py, the script the writers ran (not a package module)."""
    spec = importlib.util.spec_from_file_location("statements_check", REPO / "data" / "statements_train" / "check.py")
    checker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checker)
    return checker


def test_no_training_pair_is_close_to_an_evaluation_pair():
    checker = _writers_check()
    words, jaccard = checker.words, checker.jaccard
    train = [pair for path in sorted((REPO / "data" / "statements_train").glob("part*.jsonl")) for pair in _pairs(path)]
    assert len(train) >= 5900
    train += _pairs(REPO / "data" / "numbers_train" / "numbers.jsonl")  # generated from shared training splits
    judged = _pairs(REPO / "benchmarks" / "data" / "statements_dev.jsonl")
    judged += _pairs(REPO / "benchmarks" / "data" / "statements_test.jsonl")
    judged += _pairs(REPO / "benchmarks" / "data" / "statements_parties_dev.jsonl")
    judged += _pairs(REPO / "benchmarks" / "data" / "statements_attempts_dev.jsonl")
    judged += _pairs(REPO / "benchmarks" / "data" / "statements_numbers_dev.jsonl")
    judged += _pairs(REPO / "benchmarks" / "data" / "statements_swapped_dev.jsonl")
    # The examples and the pairs of the bug report that motivated the dev set: held-out checks.
    judged += _pairs(REPO / "examples" / "statement_pairs.jsonl") + _pairs(REPO / "examples" / "bug_report_pairs.jsonl")
    judged_words = [(words(p), words(h), p, h) for p, h in judged]
    close = []
    for premise, hypothesis in train:
        pw, hw = words(premise), words(hypothesis)
        for jp, jh, p, h in judged_words:
            if (jaccard(pw, jp) + jaccard(hw, jh)) / 2 >= 0.6:
                close.append((premise, hypothesis, p, h))
    assert not close, f"{len(close)} training pairs are near-copies of evaluation pairs, e.g. {close[0]}"


def test_every_part_passes_the_writers_check():
    """Keys, labels, kinds, unique ids and pairs, one label of each kind per premise triplet."""
    checker = _writers_check()
    parts = sorted((REPO / "data" / "statements_train").glob("part*.jsonl"))
    assert len(parts) == 24
    for path in parts:
        assert checker.check(path) == [], path.name


def test_the_writers_check_finds_a_broken_triplet(tmp_path):
    checker = _writers_check()
    rows = [
        json.loads(line) for line in (REPO / "data" / "statements_train" / "part9.jsonl").read_text().splitlines()[:3]
    ]
    rows[1]["label"] = rows[0]["label"]  # two hypotheses with one label: no contrast
    broken = tmp_path / "part99.jsonl"
    broken.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert any("expected one of each" in problem for problem in checker.check(broken))
