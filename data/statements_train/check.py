"""Check one file of statement training pairs: structure, labels, triplets, surface cues.

    python data/statements_train/check.py data/statements_train/part9.jsonl

Exits 1 and lists every problem (line numbers are 1-based); prints per-label surface-cue
figures so a writer can see whether "shared words -> support" or "a negation -> contradict"
would work on the file (it should not).
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

KINDS = {
    "accusation_denial", "paraphrase", "numbers_dates", "swapped_actors", "antonyms", "double_negation",
    "unrelated_detail", "hedged_claim", "paragraph_premise", "related_no_claim",
}  # fmt: skip
LABELS = {"support", "contradict", "neutral"}
KEYS = {"id", "premise", "hypothesis", "label", "kind", "topic", "group"}
NEGATION = re.compile(r"\b(not|no|never|none|nobody|neither|nor|without)\b|n't\b", re.IGNORECASE)


def words(text: str) -> set[str]:
    """Lower-cased word set (tests/test_statements_train.py measures closeness with it too)."""
    return set(re.findall(r"[a-z0-9']+", text.lower()))


NAME = re.compile(r"\b[A-Z][\w'-]*")


def masked_words(text: str) -> set[str]:
    """Like :func:`words`, with every capitalised word (names, places, and sentence starts) made one
    placeholder: two pairs built on one sentence template with other names come out close, which
    :func:`words` misses (``benchmarks/near_templates.py``)."""
    return words(NAME.sub(" name0 ", text))


def jaccard(first: set[str], second: set[str]) -> float:
    """Jaccard overlap of two word sets (from :func:`words`)."""
    return len(first & second) / max(1, len(first | second))


def check(path: Path) -> list[str]:
    """Problems found in ``path``; an empty list when the file is well formed."""
    problems, rows, seen_ids, seen_pairs = [], [], set(), set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(f"line {number}: not JSON ({error})")
            continue
        if set(row) != KEYS:
            problems.append(f"line {number}: keys {sorted(row)}, expected {sorted(KEYS)}")
            continue
        if row["label"] not in LABELS:
            problems.append(f"line {number}: label {row['label']!r}, expected one of {sorted(LABELS)}")
        if row["kind"] not in KINDS:
            problems.append(f"line {number}: kind {row['kind']!r}, expected one of {sorted(KINDS)}")
        if row["id"] in seen_ids:
            problems.append(f"line {number}: id {row['id']} repeated")
        pair = (row["premise"].strip(), row["hypothesis"].strip())
        if pair in seen_pairs:
            problems.append(f"line {number}: premise+hypothesis repeated")
        if not all(pair):
            problems.append(f"line {number}: empty premise or hypothesis")
        seen_ids.add(row["id"])
        seen_pairs.add(pair)
        rows.append((number, row))
    groups: dict[str, list[tuple[int, dict]]] = {}
    for number, row in rows:
        groups.setdefault(row["group"], []).append((number, row))
    for group, members in groups.items():
        labels = sorted(row["label"] for _, row in members)
        if labels != ["contradict", "neutral", "support"]:
            problems.append(f"group {group} (line {members[0][0]}): labels {labels}, expected one of each")
        if len({row["premise"] for _, row in members}) != 1:
            problems.append(f"group {group} (line {members[0][0]}): the three rows must share one premise")
        if len({row["kind"] for _, row in members}) != 1:
            problems.append(f"group {group} (line {members[0][0]}): the three rows must share one kind")
    return problems


def cues(path: Path) -> str:
    """Per label: share of hypotheses with a negation word, and mean word Jaccard with the premise."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines = [f"{len(rows)} rows, kinds: {dict(Counter(r['kind'] for r in rows))}"]
    for label in sorted(LABELS):
        mine = [r for r in rows if r["label"] == label]
        negated = sum(bool(NEGATION.search(r["hypothesis"])) for r in mine)
        overlap = [jaccard(words(r["premise"]), words(r["hypothesis"])) for r in mine]
        mean = sum(overlap) / max(1, len(overlap))
        lines.append(f"{label:>10}: {len(mine)} rows, hypothesis has a negation {negated}, mean Jaccard {mean:.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    target = Path(sys.argv[1])
    found = check(target)
    for problem in found:
        print(problem)
    print(cues(target) if not found else f"{len(found)} problem(s)")
    sys.exit(1 if found else 0)
