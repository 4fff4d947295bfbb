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


Interval = tuple[float, float, bool, bool]  # low, high, low included, high included
# Where readers differ, every reading: "the 2000s" may be the decade or the century, and the
# parts of a month have no agreed borders.
PARTS = {"early": [(1, 10), (1, 12)], "mid": [(11, 20), (8, 22)], "late": [(21, 31), (18, 31)], None: [(1, 31)]}


def _readings(figure: str) -> list[Interval]:
    """The values a figure allows, once per reading; written apart from the generator so that a
    wrong label rule cannot also be a wrong check."""
    figure = figure.lower()
    if m := re.fullmatch(r"in the (\d{4})s", figure):
        decade = int(m[1])
        return [(decade, decade + 10, True, False)] + ([(2000, 2100, True, False)] if decade == 2000 else [])
    if m := re.fullmatch(r"in (\d{4})", figure):
        return [(int(m[1]), int(m[1]) + 1, True, False)]
    if m := re.fullmatch(r"before (\d{4})", figure):
        return [(-math.inf, int(m[1]), False, False)]
    if m := re.fullmatch(r"after (\d{4})", figure):
        return [(int(m[1]) + 1, math.inf, True, False)]
    if m := re.fullmatch(r"on (?:(\d+) ([a-z]+)|([a-z]+) (\d+)(?:st|nd|rd|th)?)", figure):
        day, month = int(m[1] or m[4]), MONTHS.index(m[2] or m[3])
        return [(month * 31 + day, month * 31 + day, True, True)]
    if m := re.fullmatch(r"in (?:(early|mid|late)[ -])?([a-z]+)", figure):
        month = MONTHS.index(m[2]) * 31
        return [(month + first, month + last, True, True) for first, last in PARTS[m[1]]]
    value = _amount(figure)
    if figure.startswith(("more than", "over")):
        return [(value, math.inf, False, False)]
    if figure.startswith("at least"):
        return [(value, math.inf, True, False)]
    if figure.startswith(("fewer than", "less than", "under")):
        return [(-math.inf, value, False, False)]
    if figure.startswith("no more than"):
        return [(-math.inf, value, False, True)]
    return [(value, value, True, True)]


def _label_of(premise: Interval, hypothesis: Interval) -> str:
    """support when every value the premise allows satisfies the hypothesis, contradict when none
    does, neutral otherwise."""
    p_low, p_high, p_low_in, p_high_in = premise
    h_low, h_high, h_low_in, h_high_in = hypothesis
    inside_low = p_low > h_low or (p_low == h_low and (h_low_in or not p_low_in))
    inside_high = p_high < h_high or (p_high == h_high and (h_high_in or not p_high_in))
    if inside_low and inside_high:
        return "support"
    below = p_high < h_low or (p_high == h_low and not (p_high_in and h_low_in))
    above = p_low > h_high or (p_low == h_high and not (p_low_in and h_high_in))
    return "contradict" if below or above else "neutral"


def _labels(premise_figure: str, hypothesis_figure: str) -> set[str]:
    """The labels the pair gets over every reading of both figures: one label when it is settled."""
    return {_label_of(p, h) for p in _readings(premise_figure) for h in _readings(hypothesis_figure)}


def _rewrites(sentence: str, seed: int) -> tuple[str, dict]:
    """The generator's figure (as written) and per-label rewrites for ``sentence``."""
    generator, rng = _generator(), random.Random(seed)
    found = generator.date_rewrites(sentence, rng)
    if found is None:
        quantity = generator.find_quantity(sentence)
        assert quantity is not None, sentence
        found = quantity.start, quantity.end, generator.quantity_rewrites(quantity, rng)
    start, end, choices = found
    return sentence[start:end], choices


def _rewritten_pairs(sentence: str, seeds: int = 16):
    """(label, (premise figure, hypothesis figure)) for every rewrite the generator offers, over
    ``seeds`` seeds (the rewrites draw phrasings and figures at random)."""
    for seed in range(seeds):
        exact, choices = _rewrites(sentence, seed)
        assert all(choices.values()), (sentence, choices)
        for label, pairs in choices.items():
            for premise_figure, hypothesis_figure in pairs:
                yield label, (premise_figure or exact, hypothesis_figure or exact)


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
    for label, pair in _rewritten_pairs(sentence):
        assert _labels(*pair) == {label}, (sentence, pair, label)


@pytest.mark.parametrize(
    "sentence, unwritten",
    [
        ("The fire destroyed 8 houses in the village, officials said.", "more than 8"),  # 7.5 would print as 8
        ("The ticket cost $9.99 at the station, the company said.", "$10"),  # the exact figure stays $9.99
        ("The council approved spending of $1.04 billion on roads.", "$1 billion"),
        ("Turnout was 100% in the village, officials said.", "200%"),
        ("Turnout was 86 percent in the village, officials said.", "860 percent"),
    ],
)
def test_bounds_print_as_their_value_and_shares_stay_within_a_whole(sentence, unwritten):
    share = "%" in sentence or "percent" in sentence
    for label, pair in _rewritten_pairs(sentence):
        assert _labels(*pair) == {label}, (sentence, pair, label)
        assert unwritten not in pair, pair
        assert not share or all(_amount(text) <= 100 for text in pair), pair


@pytest.mark.parametrize("day", [7, 10, 11, 13, 17, 20, 21, 24, 31])
def test_parts_of_the_month_are_used_only_where_readers_agree(day):
    sentence = f"The agreement was signed on {day} August in the capital, the ministry said."
    for label, pair in _rewritten_pairs(sentence):
        assert _labels(*pair) == {label}, pair


@pytest.mark.parametrize("year", [1990, 1999, 2000, 2005, 2010, 2012, 2020])
def test_decades_are_used_only_where_readers_agree(year):
    sentence = f"The company was founded in {year} by two engineers, its website says."
    for label, pair in _rewritten_pairs(sentence):
        assert _labels(*pair) == {label}, pair


@pytest.mark.parametrize(
    "sentence",
    [
        "About 312 people were killed in the earthquake.",  # already hedged
        "Between 10 and 20 people were hurt in the crash.",  # a range
        "The 312 passengers were taken to a hotel.",  # after a determiner
        "The iPhone 6 users could not make calls.",  # a name, not a count
        "The storm killed 312 people and injured 40 others.",  # two figures
        "Only 3 people attended.",  # too small to bound sensibly
        "Chapter 10 considers the case of the missing files.",  # a name, then a verb
        "Officials said the report 5 shows the flames spreading.",  # a verb
        "The museum describes its past in 1561 houses.",  # a year-like figure
        "Police found 25 grams of the drug in the car.",  # a measure, not a count
        "Officials said probably 80 percent of the homes were damaged.",  # hedged
    ],
)
def test_figures_whose_rewrite_would_not_settle_the_label_are_skipped(sentence):
    assert _generator().find_quantity(sentence) is None


@pytest.mark.parametrize(
    "sentence",
    [
        "The store opened in 2012 and employed 400 staff.",  # a second figure
        "He was caught in 2013 car after a chase.",  # a model year, not a date
        "We found out on September 11 what can happen with hijacked planes.",  # names an event
    ],
)
def test_dates_that_would_not_settle_the_label_are_skipped(sentence):
    assert _generator().date_rewrites(sentence, random.Random(0)) is None


def test_every_row_of_the_file_is_settled_by_its_figures():
    """Each row differs from its sentence only by the figures it records, and those figures
    give its label under every reading."""
    rows = [json.loads(line) for line in GENERATED.read_text(encoding="utf-8").splitlines()]
    for row in rows:
        premise_figure, hypothesis_figure = row["premise_figure"], row["hypothesis_figure"]
        assert _labels(premise_figure, hypothesis_figure) == {row["label"]}, row["id"]
        premise, hypothesis = row["premise"], row["hypothesis"]
        places = [m.start() for m in re.finditer(re.escape(premise_figure.lower()), premise.lower())]
        assert any(
            premise[:at] == hypothesis[:at]
            and hypothesis[at : at + len(hypothesis_figure)].lower() == hypothesis_figure.lower()
            and premise[at + len(premise_figure) :] == hypothesis[at + len(hypothesis_figure) :]
            for at in places
        ), row["id"]


def test_the_file_is_the_generators_output_and_holds_balanced_triplets(data_dir, tmp_path):
    rows = [json.loads(line) for line in GENERATED.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 1200 and len(rows) % 3 == 0
    for index in range(0, len(rows), 3):
        triplet = rows[index : index + 3]
        assert {row["label"] for row in triplet} == {"support", "contradict", "neutral"}
        assert len({row["group"] for row in triplet}) == 1
    sources = [data_dir / name / "train.jsonl" for name in _generator().SOURCES]
    regenerated = tmp_path / "numbers.jsonl"
    assert _generator().main(["--output", str(regenerated), "--source", *map(str, sources)]) == 0
    assert regenerated.read_bytes() == GENERATED.read_bytes()
