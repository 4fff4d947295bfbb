"""The generated numeric pairs: every rewrite's label must follow from arithmetic, and the file
must be what the generator makes from the shared training splits (nothing edited by hand)."""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import random
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GENERATED = REPO / "data" / "numbers_train" / "numbers.jsonl"
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december"]  # fmt: skip


@functools.cache
def _generator():
    """data/numbers_train/generate.py (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("numbers_generate", REPO / "data" / "numbers_train" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def _amount(text: str) -> float:
    """'1,250' -> 1250, '$4.2 billion' -> 4.2e9, '3.1%' -> 3.1."""
    match = re.search(r"(\d[\d,]*(?:\.\d+)?)(?: (million|billion))?", text)
    scale = {"million": 1e6, "billion": 1e9, None: 1}[match.group(2)]
    return float(match.group(1).replace(",", "")) * scale


def _interval(figure: str) -> tuple[float, float, bool, bool]:
    """The values a figure allows, as (low, high, low included, high included); written independently
    of the generator so a wrong label rule cannot also be a wrong check."""
    figure = figure.lower()
    if m := re.fullmatch(r"in the (\d{4})s", figure):
        return int(m[1]), int(m[1]) + 10, True, False
    if m := re.fullmatch(r"in (\d{4})", figure):
        return int(m[1]), int(m[1]) + 1, True, False
    if m := re.fullmatch(r"before (\d{4})", figure):
        return -math.inf, int(m[1]), False, False
    if m := re.fullmatch(r"after (\d{4})", figure):
        return int(m[1]) + 1, math.inf, True, False
    if m := re.fullmatch(r"on (?:(\d+) ([a-z]+)|([a-z]+) (\d+))", figure):
        day, month = int(m[1] or m[4]), MONTHS.index(m[2] or m[3])
        return month * 31 + day, month * 31 + day, True, True
    if m := re.fullmatch(r"in (?:(early|mid|late)[ -])?([a-z]+)", figure):
        month = MONTHS.index(m[2]) * 31
        first, last = {"early": (1, 10), "mid": (11, 20), "late": (21, 31), None: (1, 31)}[m[1]]
        return month + first, month + last, True, True
    value = _amount(figure)
    if figure.startswith(("more than", "over")):
        return value, math.inf, False, False
    if figure.startswith("at least"):
        return value, math.inf, True, False
    if figure.startswith(("fewer than", "less than", "under")):
        return -math.inf, value, False, False
    if figure.startswith("no more than"):
        return -math.inf, value, False, True
    return value, value, True, True


def _label(premise_figure: str, hypothesis_figure: str) -> str:
    """support when every value the premise allows satisfies the hypothesis, contradict when none
    does, neutral otherwise."""
    p_low, p_high, p_low_in, p_high_in = _interval(premise_figure)
    h_low, h_high, h_low_in, h_high_in = _interval(hypothesis_figure)
    inside_low = p_low > h_low or (p_low == h_low and (h_low_in or not p_low_in))
    inside_high = p_high < h_high or (p_high == h_high and (h_high_in or not p_high_in))
    if inside_low and inside_high:
        return "support"
    below = p_high < h_low or (p_high == h_low and not (p_high_in and h_low_in))
    above = p_low > h_high or (p_low == h_high and not (p_low_in and h_high_in))
    return "contradict" if below or above else "neutral"


SENTENCES = [
    "The earthquake killed 312 people in the north of the country.",
    "Officials said the typhoon left 87 people dead along the coast.",
    "The club has signed 14 players this season, its coach said.",
    "Police said 40,000 protesters marched to the parliament building.",
    "The company reported revenue of $4.2 billion for the quarter, up from last year.",
    "The government approved an aid package worth €250 million for the region.",
    "Unemployment was 7.4% in the eurozone, the statistics office said.",
    "The border treaty was signed in 1998 after years of negotiation.",
    "The talks are scheduled to begin on 14 March in Geneva, the ministry said.",
    "The students went missing on September 25 after a protest turned violent.",
]


@pytest.mark.parametrize("sentence", SENTENCES)
def test_every_rewrite_label_follows_from_arithmetic(sentence):
    generator = _generator()
    for seed in range(8):  # the rewrites draw phrasings and figures at random
        rng = random.Random(seed)
        found = generator.date_rewrites(sentence, rng)
        if found is None:
            quantity = generator.find_quantity(sentence)
            assert quantity is not None, sentence
            found = quantity.start, quantity.end, generator.quantity_rewrites(quantity, rng)
        start, end, choices = found
        exact = sentence[start:end]
        assert all(choices.values()), choices
        for label, pairs in choices.items():
            for premise_figure, hypothesis_figure in pairs:
                derived = _label(premise_figure or exact, hypothesis_figure)
                assert derived == label, (sentence, premise_figure or exact, hypothesis_figure, label)


@pytest.mark.parametrize(
    "sentence",
    [
        "About 312 people were killed in the earthquake.",  # already hedged
        "Between 10 and 20 people were hurt in the crash.",  # a range
        "The 312 passengers were taken to a hotel.",  # after a determiner
        "The iPhone 6 users could not make calls.",  # a name, not a count
        "The storm killed 312 people and injured 40 others.",  # two figures
        "Only 3 people attended.",  # too small to bound sensibly
    ],
)
def test_figures_whose_rewrite_would_not_settle_the_label_are_skipped(sentence):
    assert _generator().find_quantity(sentence) is None


def test_a_second_figure_keeps_a_year_out():
    rng = random.Random(0)
    assert _generator().date_rewrites("The store opened in 2012 and employed 400 staff.", rng) is None


def test_the_file_is_the_generators_output_and_holds_balanced_triplets(data_dir, tmp_path):
    rows = [json.loads(line) for line in GENERATED.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 1200 and len(rows) % 3 == 0
    for index in range(0, len(rows), 3):
        triplet = rows[index : index + 3]
        assert {row["label"] for row in triplet} == {"support", "contradict", "neutral"}
        assert len({row["group"] for row in triplet}) == 1
    sources = [data_dir / name / "train.jsonl" for name in _generator().SOURCES]
    regenerated = tmp_path / "numbers.jsonl"
    assert _generator().main(["--output", str(regenerated), "--groups", "600", "--source", *map(str, sources)]) == 0
    assert regenerated.read_bytes() == GENERATED.read_bytes()
