"""Tokenise pairs once, sort by length, and cut batches under a token budget.

Padding every batch to ``max_length`` is the main waste for short pairs (about 2.5x
slower here than sorted dynamic padding), so batches are built from length-sorted
rows and padded only to their own longest row. Results are put back in input order
by the caller, using the indices each batch carries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported only by the torch backend: the ONNX path runs without it
    import torch


@dataclass
class EncodedPairs:
    """Token ids of N pairs, unpadded, plus which premises were cut to fit.

    Attributes:
        input_ids: one list of token ids per pair.
        token_type_ids: segment ids per pair, or None when the model has none.
        truncated: bool array (N,): True where the text was cut to ``max_length``.
    """

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    truncated: np.ndarray

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        """Token count of each pair (special tokens included)."""
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))


# A token covers at least one character, and in practice far fewer than this many; texts
# longer than max_length * _CHARS_PER_TOKEN are cut before tokenising (exactness is checked).
_CHARS_PER_TOKEN = 32


def _precut(texts: Sequence[str], others: Sequence[str], limit: int) -> tuple[list[str], list[bool]]:
    """Cut texts over ``limit`` chars, but only where the other text of the pair is not cut."""
    cut, flags = [], []
    for text, other in zip(texts, others, strict=True):
        long = len(text) > limit and len(other) <= limit
        cut.append(text[:limit] if long else text)
        flags.append(long)
    return cut, flags


def encode_pairs(tokenizer, premises: Sequence[str], hypotheses: Sequence[str], max_length: int) -> EncodedPairs:
    """Tokenise (premise, hypothesis) pairs, cutting the longer text first when over ``max_length``.

    Truncation is detected exactly: only pairs that came back at ``max_length`` tokens can
    have been cut, and for those the untruncated lengths are counted. A very long text
    (a 10 MB article) is first cut by characters, which gives the same tokens as long as
    the cut text still fills ``max_length``; where it does not, the whole text is used.
    """
    limit = max_length * _CHARS_PER_TOKEN
    premises_cut, premise_was_cut = _precut(premises, hypotheses, limit)
    hypotheses_cut, hypothesis_was_cut = _precut(hypotheses, premises, limit)
    encoded = tokenizer(
        premises_cut,
        hypotheses_cut,
        truncation="longest_first",
        max_length=max_length,
        padding=False,
        return_attention_mask=False,
    )
    input_ids = encoded["input_ids"]
    token_type_ids = encoded.get("token_type_ids")
    redo = [
        i for i, ids in enumerate(input_ids) if len(ids) < max_length and (premise_was_cut[i] or hypothesis_was_cut[i])
    ]
    if redo:  # the cut text did not fill max_length (e.g. mostly whitespace): use it whole
        again = tokenizer(
            [premises[i] for i in redo],
            [hypotheses[i] for i in redo],
            truncation="longest_first",
            max_length=max_length,
        )
        for position, row in enumerate(redo):
            input_ids[row] = again["input_ids"][position]
            if token_type_ids is not None:
                token_type_ids[row] = again["token_type_ids"][position]
    truncated = np.zeros(len(input_ids), dtype=bool)
    at_limit = [i for i, ids in enumerate(input_ids) if len(ids) >= max_length]
    if at_limit:
        special = tokenizer.num_special_tokens_to_add(pair=True)
        premise_lengths = token_counts(tokenizer, [premises_cut[i] for i in at_limit])
        hypothesis_lengths = token_counts(tokenizer, [hypotheses_cut[i] for i in at_limit])
        for row, premise_length, hypothesis_length in zip(at_limit, premise_lengths, hypothesis_lengths, strict=True):
            cut = premise_was_cut[row] or hypothesis_was_cut[row]
            truncated[row] = cut or premise_length + hypothesis_length + special > max_length
    return EncodedPairs(input_ids=input_ids, token_type_ids=token_type_ids, truncated=truncated)


def progress_bar(total: int | None, enabled: bool, desc: str | None = None):
    """A tqdm bar counting pairs (with pairs/s), or None when progress is off.

    ``total`` may be None when the number of rows is not known in advance (streamed files).
    """
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="pair", desc=desc, dynamic_ncols=True)


def untruncated_backend(tokenizer):
    """The fast tokenizer's Rust backend with truncation and padding switched off, or None.

    The backend keeps the truncation of the last ``tokenizer(...)`` call (transformers
    re-applies its settings on every call), so it must be reset before counting tokens.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        backend.no_truncation()
        backend.no_padding()
    return backend


def token_counts(tokenizer, texts: Sequence[str]) -> list[int]:
    """Untruncated token counts of ``texts`` without special tokens.

    Goes straight to the Rust backend when there is one: it is faster and does not log
    transformers' "longer than the maximum" warning, which is expected here.
    """
    backend = untruncated_backend(tokenizer)
    if backend is not None:
        return [len(encoding.ids) for encoding in backend.encode_batch(list(texts), add_special_tokens=False)]
    return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


CPU_TOKEN_BUDGET = 16_384  # padded tokens per batch: 32 rows x 512, or 128 x 128


def default_token_budget(device_type: str) -> int | None:
    """Padded tokens per batch when the caller sets no budget, by where the model runs.

    On the CPU (and any device but CUDA), :data:`CPU_TOKEN_BUDGET`: long articles go in smaller
    batches. On a CUDA GPU, none: the batch size the caller chose decides. The CPU budget cut
    128-row batches of 256-token articles to 64 rows on an H200, where the CrossEncoder ran the
    full 128.
    """
    return None if device_type == "cuda" else CPU_TOKEN_BUDGET


def length_sorted_batches(
    lengths: np.ndarray, max_batch_size: int, token_budget: int | None = None
) -> list[np.ndarray]:
    """Group row indices into batches of similar length, longest first.

    A batch holds at most ``max_batch_size`` rows and, when ``token_budget`` is set, at
    most ``token_budget`` padded tokens (rows x longest row), so long articles get small
    batches and short sentences big ones. A single row longer than the budget still gets
    a batch of its own. The sort is stable, so equal inputs always batch the same way.
    """
    if max_batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {max_batch_size}")
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = int(lengths[order[start]])
        rows = max_batch_size
        if token_budget:
            rows = max(1, min(rows, token_budget // max(longest, 1)))
        batches.append(order[start : start + rows])
        start += rows
    return batches


def collate_numpy(encoded: EncodedPairs, indices: np.ndarray, pad_token_id: int) -> dict[str, np.ndarray]:
    """Right-pad the given rows to their longest: int64 arrays ``input_ids``,
    ``attention_mask`` (and ``token_type_ids`` when the tokenizer makes them)."""
    rows = [encoded.input_ids[i] for i in indices]
    width = max(len(ids) for ids in rows)
    input_ids = np.full((len(rows), width), pad_token_id, dtype=np.int64)
    attention_mask = np.zeros((len(rows), width), dtype=np.int64)
    token_type_ids = np.zeros((len(rows), width), dtype=np.int64) if encoded.token_type_ids is not None else None
    for row, ids in enumerate(rows):
        input_ids[row, : len(ids)] = ids
        attention_mask[row, : len(ids)] = 1
        if token_type_ids is not None:
            types = encoded.token_type_ids[indices[row]]
            token_type_ids[row, : len(types)] = types
    batch = {"input_ids": input_ids, "attention_mask": attention_mask}
    if token_type_ids is not None:
        batch["token_type_ids"] = token_type_ids
    return batch


def collate(
    encoded: EncodedPairs, indices: np.ndarray, pad_token_id: int, device: torch.device | str = "cpu"
) -> dict[str, torch.Tensor]:
    """:func:`collate_numpy` as torch tensors on ``device``."""
    import torch

    return {
        name: torch.from_numpy(array).to(device)
        for name, array in collate_numpy(encoded, indices, pad_token_id).items()
    }
