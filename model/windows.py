"""Long premises: sentence-aware overlapping windows, scored and aggregated.

A premise that does not fit next to the hypothesis in ``max_length`` tokens is split
into windows that end on sentence boundaries where possible and overlap by about
``window_stride`` tokens; each window is scored against the hypothesis and the scores
are combined. A premise that fits is scored whole, exactly as in truncate mode.

Aggregations (compared on FNC-1 dev in ``benchmarks/windows.py``):
- ``max_decisive``: the window with the most confident non-neutral probability decides,
  and its probabilities are returned.
- ``summac``: SummaC-ZS style: support = max over windows, contradict = max over
  windows, neutral = min over windows, renormalised.
- ``mean``: the mean probability row over windows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from stance.model.batching import untruncated_backend
from stance.model.errors import InputDataError
from stance.model.labels import LABEL2ID

if TYPE_CHECKING:
    from stance.model.classifier import StanceClassifier, StancePrediction

AGGREGATIONS = ("max_decisive", "summac", "mean")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")


def sentence_starts(text: str) -> list[int]:
    """Character offsets where sentences start (always includes 0)."""
    return [0] + [match.end() for match in _SENTENCE_END.finditer(text) if match.end() < len(text)]


def window_spans(tokenizer, premise: str, budget: int, stride: int) -> list[tuple[int, int]]:
    """Character spans of overlapping windows of at most ``budget`` premise tokens.

    Windows end at a sentence start when one lies in the window's second half; the next
    window starts at the sentence start at or before ``stride`` tokens from the end, so
    consecutive windows share whole sentences where possible.
    """
    encoding = untruncated_backend(tokenizer).encode(premise, add_special_tokens=False)
    offsets = encoding.offsets
    if len(offsets) <= budget:
        return [(0, len(premise))]
    starts_chars = sentence_starts(premise)
    # token index of the first token at or after each sentence start
    token_starts = sorted({int(np.searchsorted([o[0] for o in offsets], c)) for c in starts_chars})
    spans: list[tuple[int, int]] = []
    first = 0
    while first < len(offsets):
        last = min(first + budget, len(offsets))
        if last < len(offsets):
            boundaries = [t for t in token_starts if first + budget // 2 < t <= last]
            if boundaries:
                last = boundaries[-1]
        spans.append((offsets[first][0], offsets[last - 1][1]))
        if last >= len(offsets):
            break
        next_first = last - stride
        earlier = [t for t in token_starts if first < t <= next_first]
        next_first = earlier[-1] if earlier else next_first
        first = max(next_first, first + 1)
    return spans


def aggregate(probabilities: np.ndarray, method: str) -> tuple[np.ndarray, int]:
    """Combine per-window probability rows (W, 3); returns (row, index of deciding window)."""
    support, contradict, neutral = LABEL2ID["support"], LABEL2ID["contradict"], LABEL2ID["neutral"]
    non_neutral = probabilities[:, [support, contradict]]
    if method == "max_decisive":
        window = int(non_neutral.max(axis=1).argmax())
        return probabilities[window], window
    if method == "summac":
        row = np.empty(3)
        row[support] = probabilities[:, support].max()
        row[contradict] = probabilities[:, contradict].max()
        row[neutral] = probabilities[:, neutral].min()
        row /= row.sum()
        winner = int(row.argmax())
        return row, int(probabilities[:, winner].argmax() if winner != neutral else non_neutral.max(axis=1).argmin())
    if method == "mean":
        row = probabilities.mean(axis=0)
        return row, int(probabilities[:, int(row.argmax())].argmax())
    raise InputDataError(f"window aggregation must be one of {list(AGGREGATIONS)}, got {method!r}")


@dataclass
class WindowScores:
    """Probabilities of every window of every pair (rows of one pair are contiguous)."""

    owners: np.ndarray  # (W,) index of the pair each window belongs to
    spans: list[tuple[int, int]]  # (W,) character offsets of each window in its premise
    probabilities: np.ndarray  # (W, 3) in LABELS order
    truncated: np.ndarray  # (W,) True where even the window was cut (a very long hypothesis)
    n_pairs: int


def score_windows(
    classifier: StanceClassifier,
    premises: list[str],
    hypotheses: list[str],
    *,
    batch_size: int = 32,
    symmetric: bool = False,
    progress: bool = False,
) -> WindowScores:
    """Split each premise into windows and score every (window, hypothesis) pair."""
    from stance.model.batching import token_counts

    tokenizer = classifier.tokenizer
    special = tokenizer.num_special_tokens_to_add(pair=True)
    hypothesis_lengths = token_counts(tokenizer, hypotheses)
    owners: list[int] = []
    spans: list[tuple[int, int]] = []
    for row, (premise, hypothesis_length) in enumerate(zip(premises, hypothesis_lengths, strict=True)):
        # Leave room for the hypothesis; a hypothesis that fills the budget is cut instead.
        budget = max(classifier.max_length - special - hypothesis_length, 16)
        stride = min(classifier.metadata.window_stride, budget // 2)
        for span in window_spans(tokenizer, premise, budget, stride):
            owners.append(row)
            spans.append(span)
    window_premises = [
        premises[o][a:b] if (a, b) != (0, len(premises[o])) else premises[o]
        for o, (a, b) in zip(owners, spans, strict=True)
    ]
    window_hypotheses = [hypotheses[o] for o in owners]
    probabilities, truncated = classifier.score_pairs(
        window_premises, window_hypotheses, batch_size=batch_size, symmetric=symmetric, progress=progress
    )
    return WindowScores(np.asarray(owners, dtype=np.int64), spans, probabilities, truncated, len(premises))


def combine_windows(scores: WindowScores, method: str) -> StancePrediction:
    """Aggregate window scores into one prediction per pair, naming the deciding window."""
    from stance.model.classifier import StancePrediction
    from stance.model.labels import LABELS

    if method not in AGGREGATIONS:
        raise InputDataError(f"window aggregation must be one of {list(AGGREGATIONS)}, got {method!r}")
    boundaries = np.flatnonzero(np.diff(scores.owners, prepend=-1)) if len(scores.owners) else np.array([], dtype=int)
    rows = np.empty((scores.n_pairs, len(LABELS)))
    decided: list[tuple[int, int]] = []
    flags = np.zeros(scores.n_pairs, dtype=bool)
    for row, start in enumerate(boundaries):
        end = boundaries[row + 1] if row + 1 < len(boundaries) else len(scores.owners)
        rows[row], window = aggregate(scores.probabilities[start:end], method)
        decided.append(scores.spans[start + window])
        flags[row] = bool(scores.truncated[start:end].any())
    labels = [LABELS[i] for i in rows.argmax(axis=1)]
    return StancePrediction(labels=labels, probabilities=rows, truncated=flags, window_spans=decided)


def predict_windowed(
    classifier: StanceClassifier,
    premises: list[str],
    hypotheses: list[str],
    *,
    batch_size: int = 32,
    symmetric: bool = False,
    progress: bool = False,
    aggregation: str | None = None,
) -> StancePrediction:
    """Window mode of ``StanceClassifier.predict`` (premises and hypotheses already checked)."""
    method = aggregation or classifier.metadata.window_aggregation
    if method not in AGGREGATIONS:
        raise InputDataError(f"window aggregation must be one of {list(AGGREGATIONS)}, got {method!r}")
    scores = score_windows(
        classifier, premises, hypotheses, batch_size=batch_size, symmetric=symmetric, progress=progress
    )
    return combine_windows(scores, method)
