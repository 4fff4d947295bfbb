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
}  # fmt: skip
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
    fewer: str  # "fewer" for counts, "less" for amounts


def nice_numbers(limit: float) -> Iterator[float]:
    """Round figures people write in bounds (1, 1.5, 2, 2.5, 3, 4, 5, ... x 10^k), ascending."""
    for exponent in range(-1, 13):
        for mantissa in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 7.5, 8, 9):
            value = round(mantissa * 10**exponent, 6)
            if value > limit:
                return
            yield value


def nice_below(value: float, ratio: float = 1.0) -> float | None:
    """Largest round figure strictly below ``value / ratio`` (None when there is none >= 1)."""
    below = [n for n in nice_numbers(value) if n < value / ratio and n >= 1]
    return below[-1] if below else None


def nice_above(value: float, ratio: float = 1.0) -> float:
    """Smallest round figure strictly above ``value * ratio``."""
    return next(n for n in nice_numbers(value * ratio * 20 + 10) if n > value * ratio)


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
    return word.endswith(("'s", "’s")) or (word[:1].isupper() and len(before) > 1) or any(c.isupper() for c in word[1:])


def find_quantity(sentence: str) -> Quantity | None:
    """The sentence's only unhedged count, percentage or amount of money, else None."""
    found: list[Quantity] = []
    for match in MONEY.finditer(sentence):
        scale = {"million": 1e6, "billion": 1e9, None: 1}[match.group(3)]
        value = float(match.group(2)) * scale
        found.append(Quantity(match.start(), match.end(), value, format_money(match.group(1)), "less"))
    for match in PERCENT.finditer(sentence):
        suffix = match.group(2)
        found.append(
            Quantity(
                match.start(), match.end(), float(match.group(1)), lambda v, s=suffix: format_decimal(v) + s, "less"
            )
        )
    for match in COUNT.finditer(sentence):
        noun = match.group(2)
        value = float(match.group(1).replace(",", ""))
        if noun in NOT_COUNT_NOUNS or not (noun.endswith("s") or noun in COUNT_NOUNS_EXTRA):
            continue
        if 1900 <= value <= 2100 and "," not in match.group(1):
            continue  # a year, not a count
        if any(q.start <= match.start() < q.end for q in found):
            continue
        found.append(Quantity(match.start(1), match.end(1), value, format_count, "fewer"))
    if len(found) != 1 or digit_count(sentence) != digit_count(sentence[found[0].start : found[0].end]):
        return None  # several figures: a rewrite of one could change what another means
    quantity = found[0]
    if quantity.value < 5 or set(preceding_words(sentence, quantity.start)) & HEDGES:
        return None
    if names_something(sentence, quantity.start):
        return None
    if re.match(r"\s*(?:-|to|or|and)\s*[$€£]?\d", sentence[quantity.end :]):
        return None  # a range
    return quantity


def replace(sentence: str, quantity: Quantity, text: str) -> str:
    """``sentence`` with the quantity's characters replaced by ``text`` (capitalised at the start)."""
    if quantity.start == 0:
        text = text[0].upper() + text[1:]
    return sentence[: quantity.start] + text + sentence[quantity.end :]


def quantity_rewrites(quantity: Quantity, rng: random.Random) -> dict[str, list[tuple[str | None, str]]]:
    """Per label, (premise figure or None for the exact one, hypothesis figure) choices."""
    value, render, fewer = quantity.value, quantity.render, quantity.fewer
    exact = render(value)
    low, high = nice_below(value), nice_above(value)
    far_low, far_high = nice_below(value, 1.3), nice_above(value, 1.3)
    more = ["more than", "over", "at least"]
    less = [f"{fewer} than", "under", "no more than"]
    choices: dict[str, list[tuple[str | None, str]]] = {"support": [], "contradict": [], "neutral": []}
    if low is not None and low < value:
        choices["support"] += [(None, f"{rng.choice(more)} {render(low)}")]
        choices["neutral"] += [(f"more than {render(low)}", exact)]
        # a looser bound follows from a bound; a tighter one does not
        lower = nice_below(low, 1.5)
        if lower is not None:
            choices["support"] += [(f"more than {render(low)}", f"more than {render(lower)}")]
        choices["neutral"] += [(f"more than {render(low)}", f"more than {render(nice_above(low, 1.5))}")]
        choices["contradict"] += [(f"more than {render(low)}", f"{fewer} than {render(low)}")]
    choices["support"] += [(None, f"{rng.choice(less)} {render(high)}")]
    choices["neutral"] += [(f"{fewer} than {render(high)}", exact)]
    choices["contradict"] += [(None, f"{rng.choice(more)} {render(far_high)}")]
    if far_low is not None:
        choices["contradict"] += [(None, f"{rng.choice(less)} {render(far_low)}")]
        choices["neutral"] += [(f"{fewer} than {render(high)}", f"{fewer} than {render(far_low)}")]
    different = [value * 10, value * 2] + ([value / 10] if value / 10 >= 5 else []) + [value / 2]
    choices["contradict"] += [(None, render(rng.choice(different)))]
    return choices


def part_of_month(day: int) -> str:
    """'early', 'mid' or 'late' for a day of the month."""
    return "early" if day <= 10 else "mid" if day <= 20 else "late"


def date_rewrites(sentence: str, rng: random.Random) -> tuple[int, int, dict[str, list[tuple[str | None, str]]]] | None:
    """Span and per-label rewrites of the sentence's one 'in YYYY' or 'on <day> <Month>', else None."""
    years, dates = list(YEAR.finditer(sentence)), list(DATE.finditer(sentence))
    if len(years) + len(dates) != 1:
        return None
    match = (years or dates)[0]
    if digit_count(sentence) != digit_count(match.group(0)):
        return None  # another figure in the sentence
    choices: dict[str, list[tuple[str | None, str]]] = {"support": [], "contradict": [], "neutral": []}
    if years:
        match = years[0]
        year = int(match.group(1))
        decade = year // 10 * 10
        other_decade = decade + rng.choice([-20, -10, 10]) if decade + 10 <= 2020 else decade - 10
        exact = f"in {year}"
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
        choices["neutral"] += [(f"in the {decade}s", exact), (f"before {decade + 10}", exact)]
        return match.start(), match.end(), choices
    match = dates[0]
    day = int(match.group(1) or match.group(4))
    month = match.group(2) or match.group(3)
    if not 1 <= day <= 31:
        return None
    us_style = match.group(3) is not None
    exact = match.group(0)
    part = part_of_month(day)
    other_part = rng.choice([p for p in ("early", "mid", "late") if p != part])
    other_month = rng.choice([m for m in MONTHS if m != month])
    other_day = rng.choice([d for d in range(1, 29) if abs(d - day) >= 4])
    other_exact = f"on {month} {other_day}" if us_style else f"on {other_day} {month}"
    choices["support"] += [
        (None, f"in {month}"),
        (None, f"in {part}-{month}" if part == "mid" else f"in {part} {month}"),
    ]
    choices["contradict"] += [
        (None, f"in {other_month}"),
        (None, f"in {other_part}-{month}" if other_part == "mid" else f"in {other_part} {month}"),
        (None, other_exact),
    ]
    choices["neutral"] += [(f"in {month}", exact)]
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
        for label in ("support", "contradict", "neutral"):
            premise_figure, hypothesis_figure = rng.choice(choices[label])
            premise = sentence if premise_figure is None else replace(sentence, span, premise_figure)
            hypothesis = replace(sentence, span, hypothesis_figure)
            rows.append({
                "id": f"{group}-{label}", "premise": premise, "hypothesis": hypothesis, "label": label,
                "kind": "numbers_dates", "topic": "news", "group": group,
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
    parser.add_argument("--groups", type=int, default=1000, help="triplets to write (default 1000)")
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
