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


def quality(
    path: Path,
    model: str,
    macro: float,
    contradict: float,
    n: int = 5355,
    backend: str = "torch",
    swapped: float | None = None,
    swapped_n: int = 120,
) -> Path:
    row = {"dataset": "fnc1", "split": "dev", "system": "model", "long_text": "truncate", "macro_f1": macro, "n": n}
    rows = [{**row, "system": "majority"}, {**row, "f1": {"contradict": contradict}}]
    if swapped is not None:  # the 120-pair swapped-actors set, as quality.py writes it
        swapped_row = row | {"dataset": decide.SWAPPED, "macro_f1": swapped, "n": swapped_n}
        rows += [swapped_row | {"system": "tfidf_lr", "macro_f1": 0.99}, swapped_row]
    path.write_text(json.dumps({"model": model, "backend": backend, "rows": rows}))
    return path


def pair(label: str, contradict: float) -> dict:
    rest = (1 - contradict) / 2
    return {
        "label": label,
        "expected": "contradict",
        "probabilities": {"support": rest, "contradict": contradict, "neutral": rest},
    }


def arguments(tmp_path, candidate_dev, fnc1, **quality_options) -> argparse.Namespace:
    default_dev = {"statements": 0.848, "sick": 0.869, "fnc1": 0.688, "parties": 0.8}
    return argparse.Namespace(
        recipe_dev=str(recipe_dev(tmp_path / "r.json", default_dev, candidate_dev)),
        default="d",
        candidate="c",
        default_quality=str(quality(tmp_path / "qd.json", "default", 0.670, 0.282)),
        default_quality_model="default",
        candidate_quality=str(quality(tmp_path / "qc.json", "c", *fnc1, **quality_options)),
        fnc1_contradict_min=None,
        max_fall=0.02,
        rules="rules.md",
        rule5="pair",
        default_model=None,
        attempts_max_fall=0.0,
        swapped_quality=None,
        swapped_exclude=None,
    )


@pytest.mark.parametrize(
    ("candidate_dev", "fnc1", "pairs", "failed"),
    [
        (
            {"statements": 0.86, "sick": 0.87, "fnc1": 0.70, "parties": 0.1},
            (0.68, 0.30),
            (0.27, pair("neutral", 0.30)),
            [],
        ),
        (
            {"statements": 0.84, "sick": 0.90, "fnc1": 0.70, "parties": 0.9},
            (0.68, 0.30),
            (0.27, pair("neutral", 0.5)),
            ["2"],
        ),
        (
            {"statements": 0.90, "sick": 0.84, "fnc1": 0.71, "parties": 0.9},
            (0.68, 0.30),
            (0.27, pair("neutral", 0.3)),
            ["3"],
        ),
        (
            {"statements": 0.85, "sick": 0.86, "fnc1": 0.69, "parties": 0.9},
            (0.66, 0.27),
            (0.27, pair("neutral", 0.20)),
            ["1", "4a", "4b", "5"],
        ),
        # ties pass; the pair's bar is the default's probability to two places (0.274 -> 0.27)
        (
            {"statements": 0.848, "sick": 0.869, "fnc1": 0.688, "parties": 0.0},
            (0.670, 0.282),
            (0.274, pair("neutral", 0.27)),
            [],
        ),
        # a right label passes rule 5 even below the default's probability
        (
            {"statements": 0.86, "sick": 0.87, "fnc1": 0.70, "parties": 0.1},
            (0.68, 0.30),
            (0.9, pair("contradict", 0.4)),
            [],
        ),
    ],
)
def test_each_rule_is_computed_from_the_files(tmp_path, monkeypatch, candidate_dev, fnc1, pairs, failed):
    default_probability, candidate_pair = pairs
    by_model = {"d": pair("neutral", default_probability), "c": candidate_pair}
    monkeypatch.setattr(decide, "motivating_pair", by_model.__getitem__)
    decision = decide.decide(arguments(tmp_path, candidate_dev, fnc1))
    missed = [rule.split()[0] for rule, (*_, passed) in decision["results"].items() if not passed]
    assert missed == failed
    assert decision["shipped"] is (not failed)
    assert "parties" not in decision["dev_changes"], "a watched set (not in the mean) never decides"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n": 1500}, "1500 rows, not the whole split"),
        ({"backend": "torch-bf16"}, "rules are fp32"),
    ],
)
def test_an_fnc1_file_of_the_wrong_kind_is_refused(tmp_path, options, message):
    dev = {"statements": 0.86, "sick": 0.87, "fnc1": 0.70, "parties": 0.1}
    with pytest.raises(SystemExit, match=message):
        decide.decide(arguments(tmp_path, dev, (0.68, 0.30), **options))
    args = arguments(tmp_path, dev, (0.68, 0.30))
    args.candidate_quality = args.default_quality
    with pytest.raises(SystemExit, match="same file"):
        decide.decide(args)
    args.candidate_quality = str(quality(tmp_path / "other.json", "default", 0.68, 0.30))
    with pytest.raises(SystemExit, match="scores 'default', not 'c'"):
        decide.decide(args)


def test_fnc1_may_be_left_unmeasured_only_when_another_rule_already_failed(tmp_path, monkeypatch):
    monkeypatch.setattr(decide, "motivating_pair", lambda model: pair("neutral", 0.3))
    good_dev = {"statements": 0.86, "sick": 0.87, "fnc1": 0.70, "parties": 0.1}
    args = arguments(tmp_path, good_dev, (0.68, 0.30))
    args.candidate_quality = None
    with pytest.raises(SystemExit) as needs:
        decide.decide(args)
    assert needs.value.code == decide.NEEDS_FNC1
    by_model = {"d": pair("neutral", 0.27), "c": pair("neutral", 0.21)}  # the pair alone fails
    monkeypatch.setattr(decide, "motivating_pair", by_model.__getitem__)
    missed = [rule.split()[0] for rule, (*_, passed) in decide.decide(args)["results"].items() if not passed]
    assert missed == ["4a", "4b", "5"]
    monkeypatch.setattr(decide, "motivating_pair", lambda model: pair("neutral", 0.3))
    args = arguments(tmp_path, {"statements": 0.86, "sick": 0.80, "fnc1": 0.70, "parties": 0.1}, (0.68, 0.30))
    args.candidate_quality = None
    decision = decide.decide(args)
    missed = [rule.split()[0] for rule, (*_, passed) in decision["results"].items() if not passed]
    assert missed == ["1", "3", "4a", "4b"] and decision["shipped"] is False
    assert decision["results"]["4a FNC-1 whole dev macro-F1 >= the default's"][0] == "not measured"


@pytest.mark.parametrize(("candidate_attempts", "passed"), [(0.93, True), (0.9117, True), (0.90, False)])
def test_rule5_on_the_attempts_set_ignores_the_motivating_pair(tmp_path, monkeypatch, candidate_attempts, passed):
    # the pair alone would fail rule 5 as cycles 2-3 judged it; with --rule5 attempts it is only reported
    by_model = {"d": pair("neutral", 0.27), "c": pair("neutral", 0.21)}
    monkeypatch.setattr(decide, "motivating_pair", by_model.__getitem__)
    dev = {"statements": 0.86, "sick": 0.87, "fnc1": 0.70, decide.ATTEMPTS: candidate_attempts}
    args = arguments(tmp_path, dev, (0.68, 0.30))
    default_dev = {"statements": 0.848, "sick": 0.869, "fnc1": 0.688, decide.ATTEMPTS: 0.9117}
    args.recipe_dev = str(recipe_dev(tmp_path / "r.json", default_dev, dev))
    args.rule5 = "attempts"
    decision = decide.decide(args)
    missed = [rule.split()[0] for rule, (*_, passed) in decision["results"].items() if not passed]
    assert missed == ([] if passed else ["5"]) and decision["shipped"] is passed
    assert decision["motivating pair (watched)"]["candidate"].startswith("neutral, contradict 0.21")
    args.rule5 = "pair"
    in_pair_mode = decide.decide(args)
    assert not in_pair_mode["shipped"], "the same files fail rule 5 judged on the pair"
    assert "motivating pair (watched)" not in in_pair_mode, "pair mode writes what cycles 2-3 wrote"
    if passed:  # no --candidate-quality: rules 1-3 and the attempts rule met, so FNC-1 must be scored
        args.rule5, args.candidate_quality = "attempts", None
        with pytest.raises(SystemExit) as needs:
            decide.decide(args)
        assert needs.value.code == decide.NEEDS_FNC1
    del dev[decide.ATTEMPTS]
    args.recipe_dev = str(recipe_dev(tmp_path / "r.json", default_dev, dev))
    args.rule5 = "attempts"
    with pytest.raises(SystemExit, match="no statements_attempts dev set for c"):
        decide.decide(args)
    monkeypatch.setattr(decide, "motivating_pair", None)  # refused before any model is loaded
    del default_dev[decide.ATTEMPTS]
    args.recipe_dev = str(recipe_dev(tmp_path / "r.json", default_dev, dev | {decide.ATTEMPTS: 0.9}))
    with pytest.raises(SystemExit, match="no statements_attempts dev set for d"):
        decide.decide(args)


def test_default_model_scores_the_pair_from_the_replaced_defaults_files(tmp_path, monkeypatch):
    """After a ship, model/default holds the new model: the old decision's pair comes from --default-model."""
    asked = []
    monkeypatch.setattr(decide, "motivating_pair", lambda model: asked.append(model) or pair("neutral", 0.3))
    args = arguments(tmp_path, {"statements": 0.86, "sick": 0.87, "fnc1": 0.70}, (0.68, 0.30))
    decide.decide(args)
    args.default_model = "benchmarks/reference/default-3600"
    decide.decide(args)
    assert asked == ["d", "c", "benchmarks/reference/default-3600", "c"]


@pytest.mark.parametrize(
    ("candidate_attempts", "max_fall", "passed", "rule"),
    [
        (0.90, 0.02, True, "5 the attempts dev set's macro-F1 down by no more than 0.02"),
        (0.8917, 0.02, True, "5 the attempts dev set's macro-F1 down by no more than 0.02"),
        (0.89, 0.02, False, "5 the attempts dev set's macro-F1 down by no more than 0.02"),
        (0.90, 0.0, False, "5 the attempts dev set's macro-F1 >= the default's"),
    ],
)
def test_attempts_max_fall_lets_the_attempts_set_fall_that_far_and_no_further(
    tmp_path, monkeypatch, candidate_attempts, max_fall, passed, rule
):
    monkeypatch.setattr(decide, "motivating_pair", lambda model: pair("neutral", 0.3))
    dev = {"statements": 0.86, "sick": 0.87, "fnc1": 0.70, decide.ATTEMPTS: candidate_attempts}
    args = arguments(tmp_path, dev, (0.68, 0.30))
    default_dev = {"statements": 0.848, "sick": 0.869, "fnc1": 0.688, decide.ATTEMPTS: 0.9117}
    args.recipe_dev = str(recipe_dev(tmp_path / "r.json", default_dev, dev))
    args.rule5, args.attempts_max_fall = "attempts", max_fall
    decision = decide.decide(args)
    assert decision["results"][rule][2] is passed and decision["shipped"] is passed


@pytest.mark.parametrize(("candidate_swapped", "passed"), [(0.75, True), (0.694, True), (0.6939, False)])
def test_rule6_the_swapped_set_no_lower_than_the_defaults(tmp_path, monkeypatch, candidate_swapped, passed):
    monkeypatch.setattr(decide, "motivating_pair", lambda model: pair("neutral", 0.3))
    args = arguments(tmp_path, {"statements": 0.86, "sick": 0.87, "fnc1": 0.70}, (0.68, 0.30))
    args.default_quality = str(quality(tmp_path / "qd.json", "default", 0.670, 0.282, swapped=0.694))
    args.swapped_quality = str(quality(tmp_path / "qs.json", "c", 0.1, 0.1, swapped=candidate_swapped))
    decision = decide.decide(args)
    rule = "6 the swapped-actors dev set's macro-F1 >= the default's"
    assert decision["results"][rule] == [candidate_swapped, 0.694, passed]
    assert decision["shipped"] is passed
    assert "swapped-actors dev" in decision["sources"]
    measured, args.candidate_quality = args.candidate_quality, None  # rule 6 missed: FNC-1 need not be scored
    if passed:
        with pytest.raises(SystemExit) as needs:
            decide.decide(args)
        assert needs.value.code == decide.NEEDS_FNC1
    else:
        assert not decide.decide(args)["shipped"]
    args.swapped_quality, args.candidate_quality = None, measured  # earlier cycles' rules: no rule 6
    assert rule not in decide.decide(args)["results"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"swapped_n": 60}, "statements_swapped dev has 60 rows, not the whole split's 120"),
        ({"backend": "torch-bf16"}, "scored with --backend torch-bf16"),
        ({"swapped": None}, "no statements_swapped dev row for the model"),
    ],
)
def test_a_swapped_file_of_the_wrong_kind_is_refused(tmp_path, monkeypatch, options, message):
    monkeypatch.setattr(decide, "motivating_pair", lambda model: pair("neutral", 0.3))
    args = arguments(tmp_path, {"statements": 0.86, "sick": 0.87, "fnc1": 0.70}, (0.68, 0.30))
    args.default_quality = str(quality(tmp_path / "qd.json", "default", 0.670, 0.282, swapped=0.694))
    args.swapped_quality = str(quality(tmp_path / "qs.json", "c", 0.1, 0.1, **({"swapped": 0.7} | options)))
    with pytest.raises(SystemExit, match=message):
        decide.decide(args)


@pytest.mark.parametrize(
    ("candidate_clean", "passed"), [(0.70, True), (0.6500001, True), (0.65, True), (0.6499, False)]
)
def test_rule6_on_the_clean_groups_decides_and_the_whole_set_is_watched(tmp_path, monkeypatch, candidate_clean, passed):
    monkeypatch.setattr(decide, "motivating_pair", lambda model: pair("neutral", 0.3))
    scored = []

    def clean(model, excluded):
        scored.append((model, excluded.name))
        return {"macro_f1": (candidate_clean if model == "c" else 0.65), "n": 84, "confusion_matrix": []}

    monkeypatch.setattr(decide, "swapped_clean", clean)
    args = arguments(tmp_path, {"statements": 0.86, "sick": 0.87, "fnc1": 0.70}, (0.68, 0.30))
    args.default_quality = str(quality(tmp_path / "qd.json", "default", 0.670, 0.282, swapped=0.694))
    args.swapped_quality = str(quality(tmp_path / "qs.json", "c", 0.1, 0.1, swapped=0.5))  # lower: watched only
    args.swapped_exclude = str(tmp_path / "near.json")
    decision = decide.decide(args)
    rule = "6 the swapped-actors dev set's macro-F1 >= the default's, on the 84 rows of the groups no new training pair is near"
    assert decision["results"][rule][2] is passed and decision["shipped"] is passed
    assert decision["swapped-actors dev (watched)"]["whole set (120)"] == {"candidate": 0.5, "default": 0.694}
    assert scored == [("c", "near.json"), ("d", "near.json")]
    args.default_model = "benchmarks/reference/default-cycle4"  # a replaced default is scored from its files
    decide.decide(args)
    assert scored[-1] == ("benchmarks/reference/default-cycle4", "near.json")


def test_swapped_clean_refuses_a_record_of_another_set_before_loading_a_model(tmp_path, monkeypatch):
    import stance.model

    monkeypatch.setattr(stance.model, "StanceClassifier", None)
    record = tmp_path / "near.json"
    record.write_text(json.dumps({"dev": "benchmarks/data/statements_dev.jsonl", "flagged": {}, "clean": []}))
    with pytest.raises(SystemExit, match="not benchmarks/data/statements_swapped_dev.jsonl"):
        decide.swapped_clean("c", record)
