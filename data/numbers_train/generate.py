"""Generate numeric-reasoning training pairs from real sentences of the shared training splits.

    python data/numbers_train/generate.py --output data/numbers_train/numbers.jsonl

Why: the default misses numbers and dates most (statements dev 0.611): a bound against an exact
figure ("312 killed" / "more than 300 died") and a vague figure against a precise one ("more than
1,000 troops" / "exactly 1,250") need arithmetic that 990 hand-written pairs did not teach. This
script takes sentences with one exact quantity (a count, a percentage, an amount of money, a year
or a calendar date) from FNC-1 *training* article bodies and rewrites only that quantity, so the
label follows from arithmetic alone and every other word is shared by all three labels:

- support: a bound the figure satisfies ("more than 300" for 312, "fewer than 400", "in the
  1990s" for 1998, "in mid-March" for 14 March), or a looser bound implied by a premise bound;
- contradict: a bound it violates ("more than 400", "fewer than 200"), a clearly different exact
  figure (x10, /10, x2, /2, another decade, month or part of the month);
- neutral: the premise gives only a bound or a vague period and the hypothesis a figure or a
  tighter bound inside it ("more than 300" / "312", "in March" / "on 14 March").

Labels are decided by the rules above, not by a person, so only rewrites whose label arithmetic
settles are made: a figure already hedged ("about", "up to", "more than"), part of a range
("10 to 20") or after a determiner ("the 312 passengers") is skipped. Pairs come in groups of three
(one premise sentence, one hypothesis per label), as in ``data/statements_train``. The statement
dev and test sets were not used to write the rules' phrasings or pick sentences; they only showed
which kind of reasoning was weak.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("STANCE_DATA_DIR", REPO.parent / "shared" / "data"))
sys.path.insert(0, str(REPO))

from stance.model.evidence import sentence_spans  # noqa: E402

HEDGES = {
    "about", "around", "nearly", "almost", "up", "over", "more", "than", "least", "fewer", "less",
    "some", "approximately", "roughly", "estimated", "under", "below", "above", "just", "only",
    "to", "between", "and", "or", "top", "exceed", "exceeded", "exceeding", "within", "another",
    "additional", "extra", "last", "first", "next", "past", "every", "per", "by", "from",
    "the", "a", "an", "these", "those", "its", "their", "his", "her", "our", "your", "my", "all",
    "each", "no", "number", "at", "upwards", "whopping", "mere", "surpassed", "surpassing",
    "surpass", "surpasses", "exceeds", "topped", "tops", "hit", "reached", "reaching", "reach",
    "beyond", "plus", "minus", "like", "maybe", "perhaps", "possibly", "several", "much", "many",
    "probably", "likely", "potentially", "approx", "est", "if", "would", "could", "might",
}  # fmt: skip
MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
]  # fmt: skip
# Premises with figures, train splits only: news bodies first, then claims, general NLI, science.
SOURCES = ("fnc1", "emergent", "mnli_taxinli", "climate_fever", "snli_counterfactual")
YEAR_SHARE = 0.3  # at most this share of the groups rewrite a year
COUNT_NOUNS_EXTRA = {"people", "children", "men", "women", "police", "staff", "personnel", "cattle"}
NOT_COUNT_NOUNS = {
    "years", "year", "days", "day", "hours", "hour", "minutes", "minute", "seconds", "weeks",
    "months", "times", "percent", "per", "of", "and", "or", "to", "in", "on", "at", "is", "was",
    "has", "have", "were", "million", "billion", "trillion", "miles", "feet", "metres", "meters",
    "kilometres", "kilometers", "pounds", "dollars", "euros", "degrees", "inches", "mph", "kg",
    "am", "pm", "p", "a", "ms", "s", "th", "st", "nd", "rd", "yards", "points", "goals", "games",
    "grams", "kilos", "kilograms", "mins", "secs", "hrs", "centuries", "decades", "litres", "liters",
    "tons", "tonnes", "acres", "hectares", "calories", "ounces", "gallons", "bytes", "megabytes",
    "gigabytes", "pixels", "mg", "ml", "cm", "mm", "km", "lbs", "knots",
}  # fmt: skip
# A plural "noun" after a number that is really a verb ("Chapter 10 considers", "5 shows flames").
VERBS = {
    "shows", "says", "considers", "tries", "approaches", "looks", "seems", "remains", "comes", "goes",
    "makes", "takes", "gets", "means", "includes", "contains", "features", "follows", "describes",
    "explains", "reveals", "suggests", "is", "was", "has", "does", "marks", "sees", "brings",
}  # fmt: skip
# Words that start an object or clause: a "noun" right before one is a verb.
OBJECT_STARTS = {
    "the", "a", "an", "its", "his", "her", "their", "it", "him", "them", "us", "me", "what", "how",
    "whether", "if",
}  # fmt: skip
# What may follow "in <year>" when the year dates the clause (not "in 2013 car", a model year).
AFTER_YEAR = {
    "and", "but", "when", "after", "before", "to", "for", "by", "as", "the", "with", "from", "at",
    "on", "in", "while", "that", "which", "who", "because", "during", "amid", "following", "of",
    "was", "is", "were", "had", "has", "he", "she", "they", "it", "i", "we", "according", "said",
    "until", "under", "where", "over", "into", "about", "against", "or", "so", "then", "his", "her",
}  # fmt: skip
NAMED_DATES = {("September", 11)}  # a date that names an event, not a day
_NUMBER = r"\d{1,3}(?:,\d{3})+|\d+"
COUNT = re.compile(rf"(?<![\w$€£.,/:-])({_NUMBER})\s+([a-z]+)\b(?![-/])")
PERCENT = re.compile(r"(?<![\w$€£.,/:-])(\d+(?:\.\d)?)( ?%| percent| per cent)(?![\w-])")
MONEY = re.compile(r"(?<![\w.,])([$£€])(\d+(?:\.\d+)?)(?: (million|billion))?(?![\w.,-])")
YEAR = re.compile(r"\bin (19[5-9]\d|20[0-2]\d)\b(?![\w-]|'s)")
DATE = re.compile(
    rf"\bon (?:(\d{{1,2}}) ({'|'.join(MONTHS)})|({'|'.join(MONTHS)}) (\d{{1,2}})(?:st|nd|rd|th)?)\b(?!,? \d)"
)


@dataclass(frozen=True)
class Quantity:
    """One exact figure in a sentence: where it is and how to write other figures in its place."""

    start: int
    end: int
    value: float
    render: Callable[[float], str]  # an exact figure of the same unit, e.g. 300 -> "300"
    unit: str  # "count", "percent" or "money"

    @property
    def fewer(self) -> str:
        """'fewer' for counts, 'less' for amounts."""
        return "fewer" if self.unit == "count" else "less"

    def prints_exactly(self, value: float) -> bool:
        """Whether ``render(value)`` writes ``value`` itself (7.5 people would print as 8)."""
        return math.isclose(parse_figure(self.render(value)), value, rel_tol=1e-9)

    def allows(self, value: float) -> bool:
        """A figure this unit can take: a percentage of a whole is at most 100."""
        return value > 0 and (self.unit != "percent" or value <= 100)


def nice_numbers(limit: float) -> Iterator[float]:
    """Round figures people write in bounds (1, 1.5, 2, 2.5, 3, 4, 5, ... x 10^k), ascending."""
    for exponent in range(-1, 13):
        for mantissa in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 7.5, 8, 9):
            value = round(mantissa * 10**exponent, 6)
            if value > limit:
                return
            yield value


def nice_below(value: float, ratio: float = 1.0, usable: Callable[[float], bool] = bool) -> float | None:
    """Largest ``usable`` round figure strictly below ``value / ratio`` (None when there is none >= 1)."""
    below = [n for n in nice_numbers(value) if n < value / ratio and n >= 1 and usable(n)]
    return below[-1] if below else None


def nice_above(value: float, ratio: float = 1.0, usable: Callable[[float], bool] = bool) -> float:
    """Smallest ``usable`` round figure strictly above ``value * ratio``."""
    return next(n for n in nice_numbers(value * ratio * 20 + 10) if n > value * ratio and usable(n))


def parse_figure(text: str) -> float:
    """The value a written figure stands for: '1,250' -> 1250, '$4.2 billion' -> 4.2e9, '7.5%' -> 7.5."""
    match = re.search(r"(\d[\d,]*(?:\.\d+)?)(?: (million|billion))?", text)
    scale = {"million": 1e6, "billion": 1e9, None: 1}[match.group(2)]
    return float(match.group(1).replace(",", "")) * scale


def format_count(value: float) -> str:
    """An integer with thousands separators (1250 -> '1,250')."""
    return f"{int(round(value)):,}"


def format_decimal(value: float) -> str:
    """A figure with at most one decimal (3.0 -> '3', 3.14 -> '3.1')."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def format_money(symbol: str) -> Callable[[float], str]:
    """Render an amount in the source's currency, scaled to million/billion like news copy."""

    def render(value: float) -> str:
        for scale, word in ((1e9, "billion"), (1e6, "million")):
            if value >= scale:
                return f"{symbol}{format_decimal(value / scale)} {word}"
        return f"{symbol}{format_count(value)}"

    return render


def preceding_words(sentence: str, start: int, count: int = 2) -> list[str]:
    """The ``count`` lower-cased words just before ``start``."""
    return re.findall(r"[a-z']+", sentence[:start].lower())[-count:]


def digit_count(text: str) -> int:
    """How many digits ``text`` holds (a sentence with digits outside the figure has another figure)."""
    return sum(character.isdigit() for character in text)


def names_something(sentence: str, start: int) -> bool:
    """True when the word before ``start`` is a name or a possessive ("iPhone 6", "ESPN's 11")."""
    before = re.findall(r"[\w'’]+", sentence[:start])
    if not before:
        return False
    word = before[-1]
    return word.endswith(("'s", "’s")) or word[:1].isupper() or any(c.isupper() for c in word[1:])


def find_quantity(sentence: str) -> Quantity | None:
    """The sentence's only unhedged count, percentage or amount of money, else None."""
    found: list[Quantity] = []
    for match in MONEY.finditer(sentence):
        scale = {"million": 1e6, "billion": 1e9, None: 1}[match.group(3)]
        value = float(match.group(2)) * scale
        found.append(Quantity(match.start(), match.end(), value, format_money(match.group(1)), "money"))
    for match in PERCENT.finditer(sentence):
        suffix = match.group(2)
        found.append(
            Quantity(
                match.start(), match.end(), float(match.group(1)), lambda v, s=suffix: format_decimal(v) + s, "percent"
            )
        )
    for match in COUNT.finditer(sentence):
        noun = match.group(2)
        value = float(match.group(1).replace(",", ""))
        if noun in NOT_COUNT_NOUNS or noun in VERBS or not (noun.endswith("s") or noun in COUNT_NOUNS_EXTRA):
            continue
        following = re.findall(r"[a-z']+", sentence[match.end() :].lower())[:1]
        if following and following[0] in OBJECT_STARTS:
            continue  # "10 considers the": a verb, not a plural noun
        if 1000 <= value <= 2100 and "," not in match.group(1):
            continue  # a year, not a count
        if any(q.start <= match.start() < q.end for q in found):
            continue
        found.append(Quantity(match.start(1), match.end(1), value, format_count, "count"))
    if len(found) != 1 or digit_count(sentence) != digit_count(sentence[found[0].start : found[0].end]):
        return None  # several figures: a rewrite of one could change what another means
    quantity = found[0]
    if quantity.value < 5 or set(preceding_words(sentence, quantity.start)) & HEDGES:
        return None
    if names_something(sentence, quantity.start):
        return None
    if quantity.unit == "count" and not re.search(r"[a-z]", sentence[: quantity.start].lower()):
        return None  # a count opening the sentence: often a caption or a list item
    if re.match(r"\s*(?:-|to|or|and)\s*[$€£]?\d", sentence[quantity.end :]):
        return None  # a range
    return quantity


def replace(sentence: str, quantity: Quantity, text: str) -> str:
    """``sentence`` with the quantity's characters replaced by ``text`` (capitalised at the start)."""
    if quantity.start == 0:
        text = text[0].upper() + text[1:]
    return sentence[: quantity.start] + text + sentence[quantity.end :]


def quantity_rewrites(quantity: Quantity, rng: random.Random) -> dict[str, list[tuple[str | None, str | None]]]:
    """Per label, (premise figure, hypothesis figure) choices; None stands for the figure as the
    sentence writes it (rendering it again could change it: $9.99 would print as $10)."""
    value, render, fewer = quantity.value, quantity.render, quantity.fewer
    usable = quantity.prints_exactly
    low, high = nice_below(value, usable=usable), nice_above(value, usable=usable)
    far_low, far_high = nice_below(value, 1.3, usable), nice_above(value, 1.3, usable)
    more = ["more than", "over", "at least"]
    less = [f"{fewer} than", "under", "no more than"]
    choices: dict[str, list[tuple[str | None, str | None]]] = {"support": [], "contradict": [], "neutral": []}
    if low is not None and low < value:
        choices["support"] += [(None, f"{rng.choice(more)} {render(low)}")]
        choices["neutral"] += [(f"more than {render(low)}", None)]
        # a looser bound follows from a bound; a tighter one does not
        lower = nice_below(low, 1.5, usable)
        if lower is not None:
            choices["support"] += [(f"more than {render(low)}", f"more than {render(lower)}")]
        choices["neutral"] += [(f"more than {render(low)}", f"more than {render(nice_above(low, 1.5, usable))}")]
        choices["contradict"] += [(f"more than {render(low)}", f"{fewer} than {render(low)}")]
    choices["support"] += [(None, f"{rng.choice(less)} {render(high)}")]
    choices["neutral"] += [(f"{fewer} than {render(high)}", None)]
    choices["contradict"] += [(None, f"{rng.choice(more)} {render(far_high)}")]
    if far_low is not None:
        choices["contradict"] += [(None, f"{rng.choice(less)} {render(far_low)}")]
        choices["neutral"] += [(f"{fewer} than {render(high)}", f"{fewer} than {render(far_low)}")]
    different = [value * 10, value * 2] + ([value / 10] if value / 10 >= 5 else []) + [value / 2]
    different = [figure for figure in different if quantity.allows(figure)]
    choices["contradict"] += [(None, render(rng.choice(different)))] if different else []
    # no figure above 100% (a share of a whole), in a premise or a hypothesis
    return {
        label: [pair for pair in pairs if all(quantity.allows(parse_figure(text)) for text in pair if text)]
        for label, pairs in choices.items()
    }


def part_of_month(day: int) -> str | None:
    """'early', 'mid' or 'late' for a day well inside that part of the month; None near a border
    (whether the 11th is early or mid, or the 20th mid or late, is a reader's call)."""
    return "early" if day <= 7 else "mid" if 13 <= day <= 17 else "late" if day >= 24 else None


def in_part(part: str, month: str) -> str:
    """'in early March', 'in mid-March', 'in late March'."""
    return f"in {part}-{month}" if part == "mid" else f"in {part} {month}"


def date_rewrites(
    sentence: str, rng: random.Random
) -> tuple[int, int, dict[str, list[tuple[str | None, str | None]]]] | None:
    """Span and per-label rewrites of the sentence's one 'in YYYY' or 'on <day> <Month>', else None."""
    years, dates = list(YEAR.finditer(sentence)), list(DATE.finditer(sentence))
    if len(years) + len(dates) != 1:
        return None
    match = (years or dates)[0]
    if digit_count(sentence) != digit_count(match.group(0)):
        return None  # another figure in the sentence
    choices: dict[str, list[tuple[str | None, str | None]]] = {"support": [], "contradict": [], "neutral": []}
    if years:
        match = years[0]
        year = int(match.group(1))
        following = re.findall(r"[a-z']+|[^\s\w]", sentence[match.end() :].lower())[:1]
        if following and following[0].isalpha() and following[0] not in AFTER_YEAR:
            return None  # "in 2013 car": a model year, not when something happened
        decade = year // 10 * 10
        # "the 2000s" can mean the whole century: never the decade that contradicts a later year
        other_decades = [
            d for d in (decade - 20, decade - 10, decade + 10) if d <= 2020 and not (d == 2000 and year >= 2010)
        ]
        other_decade = rng.choice(other_decades)
        choices["support"] += [
            (None, f"in the {decade}s"),
            (None, f"before {decade + 10}"),
            (None, f"after {decade - 1}"),
        ]
        choices["contradict"] += [
            (None, f"in the {other_decade}s"),
            (None, f"in {year + rng.choice([-7, -4, -3, 3, 4, 7])}"),
            (None, f"before {decade}") if year - decade >= 1 else (None, f"after {year + 5}"),
        ]
        choices["neutral"] += [(f"in the {decade}s", None), (f"before {decade + 10}", None)]
        return match.start(), match.end(), choices
    match = dates[0]
    day = int(match.group(1) or match.group(4))
    month = match.group(2) or match.group(3)
    if not 1 <= day <= 31:
        return None
    if (month, day) in NAMED_DATES:
        return None
    us_style = match.group(3) is not None
    part = part_of_month(day)
    other_month = rng.choice([m for m in MONTHS if m != month])
    other_day = rng.choice([d for d in range(1, 29) if abs(d - day) >= 4])
    other_exact = f"on {month} {other_day}" if us_style else f"on {other_day} {month}"
    choices["support"] += [(None, f"in {month}")] + ([(None, in_part(part, month))] if part else [])
    choices["contradict"] += [(None, f"in {other_month}"), (None, other_exact)]
    if day <= 10 or day >= 21:  # only early against late: a border day is not clearly in either
        choices["contradict"] += [(None, in_part("late" if day <= 10 else "early", month))]
    choices["neutral"] += [(f"in {month}", None)]
    return match.start(), match.end(), choices


def sentences_with_figures(paths: list[Path], seed: int) -> Iterator[tuple[str, str, int, int, dict, str]]:
    """(source text id, sentence, span start, span end, rewrites) for usable premise sentences."""
    rng = random.Random(seed)
    seen: set[str] = set()
    for path in paths:
        yield from _sentences_of(path, rng, seen)


def _sentences_of(path: Path, rng: random.Random, seen: set[str]) -> Iterator[tuple[str, str, int, int, dict, str]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            body = row["premise"]
            if body in seen:
                continue
            seen.add(body)
            text_id = f"{path.parent.name}:{row.get('body_id') or row['id']}"
            for start, end in sentence_spans(body):
                sentence = " ".join(body[start:end].split())
                if not 40 <= len(sentence) <= 260 or "?" in sentence or sentence.count('"') % 2:
                    continue
                found = date_rewrites(sentence, rng)
                if found is not None:
                    kind = "year" if YEAR.search(sentence) else "date"
                else:
                    quantity = find_quantity(sentence)
                    if quantity is None:
                        continue
                    found = quantity.start, quantity.end, quantity_rewrites(quantity, rng)
                    kind = "amount" if quantity.fewer == "less" else "count"
                yield text_id, sentence, *found, kind


def figure_context(sentence: str, start: int, end: int, words: int = 5) -> str:
    """The lower-cased words around a figure: equal for one quote copied into several articles."""
    before = re.findall(r"[a-z0-9]+", sentence[:start].lower())[-words:]
    after = re.findall(r"[a-z0-9]+", sentence[end:].lower())[:words]
    return " ".join(before) + " # " + " ".join(after)


def generate(sources: list[Path], groups: int, seed: int) -> list[dict]:
    """``groups`` triplets (support, contradict, neutral) from distinct sentences of ``sources``."""
    rng = random.Random(seed)
    candidates = list(sentences_with_figures(sources, seed))
    rng.shuffle(candidates)
    rows: list[dict] = []
    per_body: Counter[str] = Counter()
    per_kind: Counter[str] = Counter()
    seen_contexts: set[str] = set()
    for body_id, sentence, start, end, choices, kind in candidates:
        if len(rows) >= 3 * groups:
            break
        if per_body[body_id] >= 2 or not all(choices.values()):
            continue  # at most two sentences of one article, so no story dominates
        if kind == "year" and per_kind[kind] >= groups * YEAR_SHARE:
            continue  # years are the commonest figure in news copy and the easiest
        context = figure_context(sentence, start, end)
        if context in seen_contexts:
            continue  # the same quote or wire copy in another article
        seen_contexts.add(context)
        per_body[body_id] += 1
        per_kind[kind] += 1
        group = f"numbers-g{len(rows) // 3 + 1:04d}"
        span = Quantity(start, end, 0.0, str, "")
        exact = sentence[start:end]
        for label in ("support", "contradict", "neutral"):
            premise_figure, hypothesis_figure = rng.choice(choices[label])
            premise_figure, hypothesis_figure = premise_figure or exact, hypothesis_figure or exact
            premise, hypothesis = replace(sentence, span, premise_figure), replace(sentence, span, hypothesis_figure)
            rows.append({
                "id": f"{group}-{label}", "premise": premise, "hypothesis": hypothesis, "label": label,
                "kind": "numbers_dates", "topic": "news", "group": group,
                # what was written in place of the figure: tests re-derive the label from these
                "premise_figure": premise_figure, "hypothesis_figure": hypothesis_figure,
            })  # fmt: skip
    print("groups by figure:", dict(per_kind.most_common()))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Write the pairs as JSON lines and print label and rewrite counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source",
        type=Path,
        nargs="+",
        default=[DATA_DIR / name / "train.jsonl" for name in SOURCES],
        help="train splits whose premises give the sentences (default: %(default)s)",
    )
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("numbers.jsonl"))
    parser.add_argument("--groups", type=int, default=600, help="triplets to write (default 600)")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    for source in args.source:
        if not source.exists():
            parser.error(f"{source} not found: pass --source with train splits (see ../shared/data/README.md)")
    rows = generate(args.source, args.groups, args.seed)
    if len(rows) < 3 * args.groups:
        print(f"only {len(rows) // 3} usable sentences in the sources, wanted {args.groups}", file=sys.stderr)
    args.output.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    print(f"{len(rows)} pairs ({len(rows) // 3} groups) -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
